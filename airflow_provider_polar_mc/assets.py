"""Airflow Assets of the MaxCompute tables a migration writes.

Every ``_base``, ``_log`` and replica table is an Asset with the URI ``maxcompute://<project>/<table>``
(the table as MaxCompute names it, lower case). Which tables a spec selects (``tables: all``, include
patterns) is known only when a task runs, so the tasks declare one ``AssetAlias`` per migration and
kind as their outlet, ``polar_mc__<migration>__base`` / ``__log`` / ``__replica``, and attach the
concrete tables' Asset events to it at run time. A downstream DAG schedules on the concrete Asset
(``schedule=[Asset("maxcompute://analytics/ods_orders")]``) and runs after each merge that updated it;
the event's ``extra`` names the source table (``mysql://host:port/db.table``, OpenLineage's MySQL
naming) and what changed (rows, the interval, ``as_of``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import SplitResult

from airflow.sdk import Asset, AssetAlias

Kind = Literal["base", "log", "replica"]
SCHEME = "maxcompute"


def table_uri(project: str, table: str) -> str:
    return f"{SCHEME}://{project.lower()}/{table.lower()}"


def table_asset(project: str, table: str) -> Asset:
    return Asset(uri=table_uri(project, table))


def source_namespace(host: str, port: int) -> str:
    """The source server in OpenLineage's MySQL naming (the namespace of its tables' datasets)."""
    return f"mysql://{host}:{port}"


def source_uri(host: str, port: int, table: str) -> str:
    """A source table (``db.table``) in OpenLineage's MySQL naming."""
    return f"{source_namespace(host, port)}/{table}"


def alias(migration: str, kind: Kind) -> AssetAlias:
    return AssetAlias(name=f"polar_mc__{migration}__{kind}")


def emit(
    context: Mapping[str, Any],
    outlets: Sequence[Any],
    migration: str,
    kind: Kind,
    project: str,
    tables: Iterable[tuple[str, dict[str, Any]]],
) -> int:
    """Attach an Asset event per (MaxCompute table, extra) to the task's ``kind`` alias, when the task
    declares it (the DAG factory's tasks do; an operator run outside Airflow has no outlet events).
    Returns how many events were attached."""
    wanted = alias(migration, kind)
    events = context.get("outlet_events")
    if events is None or not any(isinstance(o, AssetAlias) and o.name == wanted.name for o in outlets):
        return 0
    accessor = events[wanted]
    count = 0
    for table, extra in tables:
        accessor.add(table_asset(project, table), extra=extra)
        count += 1
    return count


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normaliser of ``maxcompute://`` Asset URIs (provider info ``asset-uris``): a project and
    one table, both lower case as MaxCompute stores them, so ``maxcompute://Demo/ODS_Orders`` and
    ``maxcompute://demo/ods_orders`` are one Asset."""
    table = uri.path.strip("/")
    if not uri.netloc or not table or "/" in table:
        raise ValueError(f"a MaxCompute Asset URI is maxcompute://<project>/<table>, got {uri.geturl()!r}")
    return uri._replace(netloc=uri.netloc.lower(), path=f"/{table.lower()}")
