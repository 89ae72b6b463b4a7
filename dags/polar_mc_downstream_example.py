"""Example downstream DAG: runs after each merge that updated a replica, scheduled on its Airflow Asset.

Every replica, ``_base`` and ``_log`` table a migration writes is an Asset ``maxcompute://<project>/<table>``
(README "Assets"). This DAG waits for the replica of the example spec's ``shop.orders``
(``ods_orders`` in the docker compose file's project ``demo``); point ``POLAR_MC_EXAMPLE_REPLICA_ASSET``
at another replica's URI to follow that one. Its task reads the triggering event: which interval the
replica now reflects (``as_of``) and its source table.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import DAG, Asset, task

REPLICA = Asset(os.environ.get("POLAR_MC_EXAMPLE_REPLICA_ASSET", "maxcompute://demo/ods_orders"))

log = logging.getLogger(__name__)

with DAG(
    dag_id="polar_mc_example_downstream",
    schedule=[REPLICA],
    catchup=False,
    tags=["polar-mc", "example"],
    doc_md=__doc__,
):

    @task(inlets=[REPLICA])
    def report_fresh_replica(**context: Any) -> list[dict[str, Any]]:
        """Stands for the work that reads the replica (a report, an export); here it logs what changed."""
        events = [dict(event.extra) for event in context["triggering_asset_events"].get(REPLICA, [])]
        for extra in events:
            log.info("%s now reflects %s up to %s", REPLICA.uri, extra.get("source"), extra.get("as_of"))
        return events

    report_fresh_replica()
