"""``polar-mc``: run the precheck or preview the schema migration outside Airflow.

    polar-mc precheck --spec FILE [--json]   # exit 1 when a check failed (or warned, unaccepted)
    polar-mc plan --spec FILE                # the MaxCompute DDL schema migration would run

Connections are resolved the Airflow way (``AIRFLOW_CONN_POLARDB_DEFAULT``, ``AIRFLOW_CONN_MAXCOMPUTE_DEFAULT``
or any configured secrets backend), so CI pipelines can run the same checks as the DAG.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from airflow_provider_polar_mc.exceptions import ConfigError


def _precheck(args: argparse.Namespace) -> int:
    from airflow_provider_polar_mc.core.precheck import run_prechecks
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(args.spec)
    report = run_prechecks(spec, resolve.source_endpoint(spec), lambda: resolve.destination(spec), log=_log(args))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    return 0 if report.passed else 1


def _plan(args: argparse.Namespace) -> int:
    from airflow_provider_polar_mc.core.maxcompute import render_create_table
    from airflow_provider_polar_mc.core.schema import plan_migration
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(args.spec)
    conn = resolve.source_endpoint(spec).connect()
    try:
        plans = plan_migration(spec, conn)
    finally:
        conn.close()
    for plan in plans:
        print(f"-- {plan.selection.source_name}")
        for ddl in plan.ddls:
            print(render_create_table(ddl))
        print()
    return 0


def _log(args: argparse.Namespace):
    return (lambda message: print(message, file=sys.stderr)) if args.verbose else (lambda message: None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polar-mc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("precheck", help="run every precheck and print the report")
    pre.add_argument("--spec", required=True, help="migration spec (YAML)")
    pre.add_argument("--json", action="store_true", help="print the report as JSON")
    pre.add_argument("-v", "--verbose", action="store_true")
    plan = sub.add_parser("plan", help="print the MaxCompute DDL the schema migration would run")
    plan.add_argument("--spec", required=True, help="migration spec (YAML)")
    plan.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        return {"precheck": _precheck, "plan": _plan}[args.command](args)
    except ConfigError as exc:
        print(f"polar-mc: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
