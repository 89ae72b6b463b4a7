"""``polar-mc``: run the precheck or preview the schema migration outside Airflow.

    polar-mc precheck --spec FILE [--json]   # exit 1 when a check failed (or warned, unaccepted)
    polar-mc plan --spec FILE                # the MaxCompute DDL schema migration would run
    polar-mc spec-schema                     # the JSON Schema of a spec file, for editors

Exit codes: 0 success; 1 a check failed (precheck), or an unexpected error; 2 the spec or a connection
is wrong: invalid spec, connection not defined or unreadable, source unreachable (plan), and for
``plan`` a spec naming a database or table the source lacks, or selecting no table. Stdout carries
only the result (the report, the JSON, the DDL); messages and logs go to stderr, one line per problem,
with a traceback only with ``-v``.

Connections are resolved the Airflow way (``AIRFLOW_CONN_POLARDB_DEFAULT``, ``AIRFLOW_CONN_MAXCOMPUTE_DEFAULT``
or any configured secrets backend), so CI pipelines can run the same checks as the DAG.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence

from airflow_provider_polar_mc.exceptions import ConfigError, PolarMcError, SourceMismatch, SourceUnreachable

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _precheck(args: argparse.Namespace) -> tuple[str, int]:
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(args.spec)
    with _logs_to_stderr(args.verbose):
        from airflow_provider_polar_mc.core.precheck import run_prechecks
        from airflow_provider_polar_mc.hooks import resolve

        resolve.check_connections(spec)
        report = run_prechecks(spec, resolve.source_endpoint(spec), lambda: resolve.destination(spec), log=_log(args))
    text = json.dumps(report.to_dict(), indent=2) if args.json else report.render()
    return text + "\n", EXIT_OK if report.passed else EXIT_CHECK_FAILED


def _plan(args: argparse.Namespace) -> tuple[str, int]:
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(args.spec)
    with _logs_to_stderr(args.verbose):
        from airflow_provider_polar_mc.core import selection
        from airflow_provider_polar_mc.core.planning import plan_migration
        from airflow_provider_polar_mc.core.source.catalog import list_databases, list_tables
        from airflow_provider_polar_mc.hooks import resolve

        resolve.check_connections(spec, destination=False)
        with contextlib.closing(resolve.connect_source(spec)) as conn:
            databases = list_databases(conn, include_system=True)
            source_tables = {db: list_tables(conn, db) for db in spec.source.databases if db in databases}
            missing = selection.missing_objects(spec, source_tables, databases=databases)
            if missing:
                raise SourceMismatch(missing, args.spec)
            if not selection.select_tables(spec, source_tables):
                raise SourceMismatch(selection.why_nothing_selected(spec, source_tables), args.spec)
            plans = plan_migration(spec, conn)
    return render_plan(plans), EXIT_OK


def render_plan(plans) -> str:
    """The ``polar-mc plan`` script: per table a ``--`` comment naming the source table (through
    ``sqltext.sql_comment``, so no character of the name can end the comment line) and its DDL."""
    from airflow_provider_polar_mc.core import sqltext
    from airflow_provider_polar_mc.core.destination.maxcompute import render_create_table
    from airflow_provider_polar_mc.exceptions import ConfigError

    lines: list[str] = []
    for plan in plans:
        lines.append(sqltext.sql_comment(plan.selection.source_name))
        try:
            lines += [render_create_table(ddl) for ddl in plan.ddls]
        except ValueError as error:  # a mapped name MaxCompute cannot hold: the precheck names the mapping
            raise ConfigError(f"{plan.selection.source_name}: {error}. Fix: map the name to a valid one "
                              "(objects[].tables[].columns or target); `polar-mc precheck` lists every such name") from None
        lines.append("")
    return "".join(f"{line}\n" for line in lines)


def _spec_schema(args: argparse.Namespace) -> tuple[str, int]:
    """The JSON Schema of a spec file, for editors (docs/spec.md, "Editor support"); needs nothing else."""
    from airflow_provider_polar_mc.spec import spec_json_schema

    return json.dumps(spec_json_schema(), indent=2) + "\n", EXIT_OK


def _log(args: argparse.Namespace):
    return (lambda message: print(message, file=sys.stderr)) if args.verbose else (lambda message: None)


class _NoShortSecretWarning(logging.Filter):
    """Airflow warns once per process "Skipping masking for a secret as it's too short" whenever a
    connection field or extra is shorter than 5 characters (``connect_timeout: "10"`` from a URI,
    ``charset: utf8``, a short password). The command line logs no connection field, so it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Skipping masking for a secret")


@contextlib.contextmanager
def _logs_to_stderr(verbose: bool) -> Iterator[None]:
    """While Airflow code runs: every log line and stray print goes to stderr, so stdout holds only
    the command's result (``polar-mc precheck --json | jq`` works)."""
    if "airflow" not in sys.modules:
        # Importing Airflow configures logging on this moment's stdout, and logs while doing so.
        with contextlib.redirect_stdout(sys.__stderr__ or sys.stderr):
            import airflow  # noqa: F401

    stdout, stderr = sys.stdout, sys.stderr
    quiet = _NoShortSecretWarning()
    moved: list[tuple[logging.StreamHandler, object]] = []
    filtered: list[logging.Handler] = []
    loggers = [logging.getLogger()] + [
        logger for logger in list(logging.Logger.manager.loggerDict.values()) if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not verbose:
                handler.addFilter(quiet)
                filtered.append(handler)
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and stream is not None and stream in (stdout, sys.__stdout__):
                moved.append((handler, handler.setStream(stderr)))
    try:
        with contextlib.redirect_stdout(stderr):
            yield
    finally:
        for handler, previous in moved:
            if previous is not None:
                handler.setStream(previous)  # type: ignore[arg-type]
        for handler in filtered:
            handler.removeFilter(quiet)


def _error_exit(exc: BaseException, verbose: bool) -> int:
    """The one place an exception becomes a message on stderr and an exit code (never a secret:
    connection errors name host, port and account only)."""
    code = EXIT_CHECK_FAILED
    hint = ""
    if isinstance(exc, KeyboardInterrupt):
        message, code = "interrupted", EXIT_INTERRUPTED
    elif isinstance(exc, (ConfigError, SourceUnreachable)):
        # SpecError (invalid spec), SourceMismatch (spec vs source), ConnectionNotUsable, UnsupportedType.
        message, code = str(exc), EXIT_BAD_INPUT
    elif type(exc).__name__ == "AirflowNotFoundException":  # a lookup outside resolve.check_connections
        message, code = f"{exc}: define the connection (AIRFLOW_CONN_<ID>, `airflow connections add`)", EXIT_BAD_INPUT
    elif _is_mysql_error(exc):
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = f"the source database refused a query: {exc.args[-1] if exc.args else exc}" + (
            f" (MySQL error {errno})" if errno else "")
    elif isinstance(exc, PolarMcError):
        message = str(exc)
    else:
        message = f"unexpected error: {type(exc).__name__}: {exc}"
        hint = "" if verbose else " (run again with -v for the traceback)"
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"polar-mc: {message}{hint}", file=sys.stderr)
    return code


def _is_mysql_error(exc: BaseException) -> bool:
    pymysql = sys.modules.get("pymysql")
    return pymysql is not None and isinstance(exc, pymysql.err.MySQLError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polar-mc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("precheck", help="run every precheck and print the report")
    pre.add_argument("--spec", required=True, help="migration spec (YAML)")
    pre.add_argument("--json", action="store_true", help="print the report as JSON (only JSON on stdout)")
    pre.add_argument("-v", "--verbose", action="store_true", help="progress, logs and tracebacks on stderr")
    plan = sub.add_parser("plan", help="print the MaxCompute DDL the schema migration would run")
    plan.add_argument("--spec", required=True, help="migration spec (YAML)")
    plan.add_argument("-v", "--verbose", action="store_true", help="progress, logs and tracebacks on stderr")
    sub.add_parser("spec-schema", help="print the JSON Schema of a spec file (for editors)").set_defaults(verbose=False)
    args = parser.parse_args(argv)
    try:
        output, code = {"precheck": _precheck, "plan": _plan, "spec-schema": _spec_schema}[args.command](args)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - translated in one place
        return _error_exit(exc, args.verbose)
    sys.stdout.write(output)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
