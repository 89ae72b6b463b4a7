"""Prechecks: every condition that would later lose or duplicate data, found before anything moves.

Each check yields a :class:`CheckResult` (passed, warning or failed) whose message says what is wrong
and whose ``fix`` says how to fix it. Warnings listed in the spec's ``accepted_warnings`` become
``accepted``; any other warning, like any failure, blocks the migration (``PrecheckReport.blocking``).
Check ids are stable: they are what users list in ``accepted_warnings``.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pymysql

from airflow_provider_polar_mc.core import filters, naming, sqltext
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.schema import compare, is_ours
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint, describe_connect_error
from airflow_provider_polar_mc.core.model import DestColumn, ServerInfo, SourceTable, TableDDL
from airflow_provider_polar_mc.core.schema_plan import plan_table
from airflow_provider_polar_mc.core.selection import missing_objects, select_tables, why_nothing_selected
from airflow_provider_polar_mc.core.source.catalog import (
    describe_selected,
    list_databases,
    list_tables,
    server_info,
)
from airflow_provider_polar_mc.exceptions import UnsupportedType
from airflow_provider_polar_mc.spec import MigrationSpec, TableSelection

Status = Literal["passed", "warning", "failed", "accepted"]

RETENTION_FAIL_SECONDS = 3 * 86400
RETENTION_WARN_SECONDS = 7 * 86400


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    status: Status
    message: str
    fix: str = ""
    objects: tuple[str, ...] = ()


@dataclass
class PrecheckReport:
    migration: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def blocking(self) -> list[CheckResult]:
        return [r for r in self.results if r.status in ("failed", "warning")]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for XCom."""
        return {
            "migration": self.migration,
            "passed": self.passed,
            "counts": {s: sum(r.status == s for r in self.results) for s in ("passed", "warning", "failed", "accepted")},
            "results": [{**asdict(r), "objects": list(r.objects)} for r in self.results],
        }

    def render(self, width: int = 100) -> str:
        """A readable table for task logs and the command line."""
        lines = [f"Precheck of migration {self.migration}: " + ("PASSED" if self.passed else "FAILED")]
        id_width = max([len(r.check_id) for r in self.results] + [5])
        lines.append(f"{'STATUS':<9} {'CHECK':<{id_width}}  MESSAGE")
        for r in self.results:
            lines.append(f"{r.status.upper():<9} {r.check_id:<{id_width}}  {r.message}")
            if r.status != "passed" and r.fix:
                lines.append(f"{'':<9} {'':<{id_width}}  fix: {r.fix}")
        if not self.passed:
            warned = sorted({r.check_id for r in self.results if r.status == "warning"})
            if warned:
                lines.append(f"Warnings block the migration unless accepted: accepted_warnings: {warned}")
        return "\n".join(lines)


def _result(check_id: str, problems: list[str], ok: str, fix: str, *, severity: Status = "failed", objects=()) -> CheckResult:
    if not problems:
        return CheckResult(check_id, "passed", ok)
    shown = "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
    return CheckResult(check_id, severity, shown, fix, tuple(objects))


# --- source checks -----------------------------------------------------------------------------------


def check_binlog(info: ServerInfo) -> list[CheckResult]:
    flag = "loose_polar_log_bin (PolarDB console: Parameters)" if info.is_polardb else "log_bin"
    results = [
        CheckResult("binlog_enabled", "passed", "binary logging is on")
        if info.log_bin
        else CheckResult(
            "binlog_enabled",
            "failed",
            "binary logging is off: incremental migration reads the binary log",
            f"turn on {flag} (PolarDB: set loose_polar_log_bin=ON in the cluster parameters; MySQL/MariaDB: "
            "start the server with --log-bin) and restart",
        )
    ]
    if not info.log_bin:
        return results
    expected = {"binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
    actual = {
        "binlog_format": info.binlog_format,
        "binlog_row_image": info.binlog_row_image,
        "binlog_row_metadata": info.binlog_row_metadata,
    }
    why = {
        "binlog_format": "only row events carry the changed rows",
        "binlog_row_image": "updates and deletes must carry every column, not just the changed ones",
        "binlog_row_metadata": "column names must travel with each event so old events decode with the "
        "schema they were written with",
    }
    for name, want in expected.items():
        have = actual[name]
        if have is None:
            results.append(
                CheckResult(name, "failed", f"the server has no {name} variable ({info.version})", "use MySQL >= 8.0.14, PolarDB for MySQL 8.0 or MariaDB >= 10.5")
            )
        elif str(have).upper() != want:
            results.append(
                CheckResult(name, "failed", f"{name} is {have}, must be {want}: {why[name]}", f"set {name}={want} (SET GLOBAL {name}={want!r} and in the server configuration / PolarDB parameters)")
            )
        else:
            results.append(CheckResult(name, "passed", f"{name} is {want}"))
    results.append(check_partial_json(info))
    return results


def check_partial_json(info: ServerInfo) -> CheckResult:
    """MySQL 8's ``binlog_row_value_options=PARTIAL_JSON`` logs a JSON update as a diff against the old
    document (PARTIAL_UPDATE_ROWS events), which no after-image carries in full: refused."""
    options = info.variables.get("binlog_row_value_options")
    if options is None:
        return CheckResult("binlog_row_value_options", "passed", "the server has no partial JSON updates in its binlog")
    if "PARTIAL_JSON" in str(options).upper():
        return CheckResult(
            "binlog_row_value_options",
            "failed",
            "binlog_row_value_options is PARTIAL_JSON: JSON updates are logged as diffs, so the after-image "
            "of a changed JSON column is incomplete",
            "set binlog_row_value_options='' (SET GLOBAL binlog_row_value_options='' and in the server "
            "configuration / PolarDB parameters)",
        )
    return CheckResult("binlog_row_value_options", "passed", "JSON updates are logged as whole documents")


def check_retention(info: ServerInfo) -> CheckResult:
    r = info.retention_seconds
    fix = (
        "keep binary logs for at least 7 days: binlog_expire_logs_seconds=604800 (MySQL 8 / MariaDB >= 10.6) "
        "or expire_logs_days=7; on PolarDB set the binlog retention in the console"
    )
    if r is None:
        return CheckResult("binlog_retention", "warning", "binlog retention could not be read", fix)
    if r == 0:
        return CheckResult("binlog_retention", "passed", "binary logs are never purged automatically")
    days = r / 86400
    if r < RETENTION_FAIL_SECONDS:
        return CheckResult("binlog_retention", "failed", f"binary logs are kept {days:.1f} days (< 3): a paused migration would lose changes", fix)
    if r < RETENTION_WARN_SECONDS:
        return CheckResult("binlog_retention", "warning", f"binary logs are kept {days:.1f} days (< 7)", fix)
    return CheckResult("binlog_retention", "passed", f"binary logs are kept {days:.1f} days")


_REPLICATION_PRIVILEGES = {
    "REPLICATION SLAVE": ("REPLICATION SLAVE",),
    # MariaDB >= 10.5 calls REPLICATION CLIENT "BINLOG MONITOR" (SHOW GRANTS shows the new name).
    "REPLICATION CLIENT": ("REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"),
}


_GRANT = re.compile(r"GRANT (?P<privileges>.+?) ON (?P<scope>\S+) TO ", re.IGNORECASE)


def granted_privileges(conn: pymysql.Connection, scopes: Iterable[str]) -> set[str]:
    """Privileges of the current account granted on any of ``scopes`` (``*.*``, ``` `db`.* ```,
    ``` `db`.`t` ``` as SHOW GRANTS writes them), parsed from SHOW GRANTS (the same on MySQL and MariaDB)."""
    wanted = set(scopes)
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        grants = [r[0] for r in cur.fetchall()]
    found: set[str] = set()
    for grant in grants:
        m = _GRANT.match(grant)
        if m and m.group("scope").replace("\\_", "_") in wanted:
            found |= {privilege.strip().upper() for privilege in m.group("privileges").split(",")}
    return found


def granted_global_privileges(conn: pymysql.Connection) -> set[str]:
    """Global privileges of the current account."""
    return granted_privileges(conn, ["*.*"])


def check_replication_privileges(conn: pymysql.Connection, user: str) -> CheckResult:
    granted = granted_global_privileges(conn)
    if "ALL PRIVILEGES" in granted:
        return CheckResult("source_replication_privileges", "passed", "the account has ALL PRIVILEGES")
    missing = [name for name, aliases in _REPLICATION_PRIVILEGES.items() if not granted & set(aliases)]
    return _result(
        "source_replication_privileges",
        [f"missing {p}" for p in missing],
        "the account has REPLICATION SLAVE and REPLICATION CLIENT",
        f"GRANT {', '.join(missing)} ON *.* TO {user}",
        objects=missing,
    )


# What the heartbeat's own session does to its table (CREATE TABLE IF NOT EXISTS, INSERT IGNORE, UPDATE).
HEARTBEAT_PRIVILEGES = ("CREATE", "INSERT", "UPDATE")


def check_heartbeat_privileges(conn: pymysql.Connection, database: str, table: str, user: str) -> CheckResult:
    """The heartbeat writer may create and refresh its table (the only write the provider makes):
    privileges granted globally, on its database or on the table."""
    granted = granted_privileges(
        conn, ["*.*", f"{sqltext.quote_mysql_name(database)}.*", sqltext.quote_mysql_table(database, table)]
    )
    missing = [] if "ALL PRIVILEGES" in granted else [p for p in HEARTBEAT_PRIVILEGES if p not in granted]
    target = sqltext.quote_mysql_table(database, table)
    return _result(
        "heartbeat_privileges",
        [f"missing {p} on {target}" for p in missing],
        f"the account may write the heartbeat table {target}",
        f"GRANT {', '.join(HEARTBEAT_PRIVILEGES)} ON {target} TO {user} (or turn the heartbeat off: heartbeat.enabled: false)",
        objects=missing,
    )


def check_select_privileges(conn: pymysql.Connection, selections: Iterable[TableSelection], user: str) -> CheckResult:
    denied: list[str] = []
    with conn.cursor() as cur:
        for s in selections:
            try:
                cur.execute(f"SELECT * FROM {sqltext.quote_mysql_table(s.source_database, s.source_table)} LIMIT 0")
                cur.fetchall()
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in (1142, 1143, 1044):
                    denied.append(s.source_name)
                else:
                    raise
    return _result(
        "source_select_privileges",
        [f"no SELECT on {name}" for name in denied],
        "the account can SELECT every selected table",
        "; ".join(f"GRANT SELECT ON {n} TO {user}" for n in denied[:5]) + ("; ..." if len(denied) > 5 else ""),
        objects=denied,
    )


# How many rows of each table the precheck evaluates a filter on, and for how long at most.
FILTER_SAMPLE_ROWS = 1000
FILTER_SECONDS = 5


def check_filters(
    conn: pymysql.Connection,
    selections: Iterable[TableSelection],
    columns: Mapping[str, Sequence[str]] | None = None,
    *,
    is_mariadb: bool = True,
) -> CheckResult:
    """Each filter (already checked against the grammar when the spec was loaded) names only the
    table's columns (``columns`` per source name, for a "did you mean") and runs, as rendered, on up to
    ``FILTER_SAMPLE_ROWS`` real rows within ``FILTER_SECONDS``; the message says how many matched."""
    bad: list[str] = []
    matched: list[str] = []
    with conn.cursor() as cur:
        for s in selections:
            if not s.filter:
                continue
            where = f"{s.spec_path}.filter on {s.source_name}: {_quote(s.filter)}"
            known = list((columns or {}).get(s.source_name, ()))
            unknown = sorted(filters.parse_filter(s.filter).columns - {c.lower() for c in known})
            if known and unknown:
                bad.append(f"{where}: {_unknown_column_text(unknown[0], known)}")
                continue
            try:
                cur.execute(_bounded(f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {s.filter_sql} THEN 1 ELSE 0 END), 0) "
                                     f"FROM (SELECT * FROM {sqltext.quote_mysql_table(s.source_database, s.source_table)} "
                                     f"LIMIT {FILTER_SAMPLE_ROWS}) AS sample", is_mariadb))
                total, hits = cur.fetchone()
            except pymysql.err.MySQLError as exc:
                bad.append(f"{where}: {_filter_failure_text(exc)}")
                continue
            matched.append(f"{s.source_name} {int(hits):,} of {int(total):,}")
    ok = "every filter condition is valid on its table"
    if matched:
        ok += " (sampled rows matching: " + ", ".join(matched[:10]) + (", ..." if len(matched) > 10 else "") + ")"
    return _result("filter_conditions", bad, ok, "correct the filter: a condition on the table's own columns "
                   "(docs/spec.md, Filters)")


def _bounded(select: str, is_mariadb: bool) -> str:
    """``select`` stopped by the server after ``FILTER_SECONDS`` (MariaDB and MySQL spell it differently)."""
    if is_mariadb:
        return f"SET STATEMENT max_statement_time={FILTER_SECONDS} FOR {select}"
    return f"SELECT /*+ MAX_EXECUTION_TIME({FILTER_SECONDS * 1000}) */ {select[len('SELECT '):]}"


def _unknown_column_text(name: str, columns: Sequence[str]) -> str:
    by_lower = {column.lower(): column for column in columns}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if match:
        hint = f"; did you mean {by_lower[match[0]]!r}?"
    else:
        hint = f"; the table's columns are {', '.join(list(columns)[:12])}" + (", ..." if len(columns) > 12 else "")
    return f"unknown column {name!r}{hint}"


def _filter_failure_text(exc: BaseException) -> str:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in (1969, 3024):  # max_statement_time / MAX_EXECUTION_TIME exceeded
        return (f"evaluating it on {FILTER_SAMPLE_ROWS:,} rows took over {FILTER_SECONDS} s; the full load would "
                "crawl: simplify it")
    text = str(exc.args[-1]) if exc.args else str(exc)
    return f"the server refused it: {text}" + (f" (MySQL error {code})" if code else "")


def _quote(expression: str) -> str:
    return repr(expression if len(expression) <= 120 else expression[:117] + "...")


def check_keys(tables: Iterable[SourceTable]) -> CheckResult:
    missing = [t.database + "." + t.name for t in tables if not t.key_columns]
    return _result(
        "primary_key",
        [f"{name} has no PRIMARY KEY or NOT NULL UNIQUE key" for name in missing],
        "every selected table has a primary key or a NOT NULL unique key",
        "add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...)) or exclude the table: without a key, "
        "changes cannot be applied to the right row and the full load cannot be split or resumed",
        objects=missing,
    )


# --- the whole run -------------------------------------------------------------------------------------


def run_prechecks(
    spec: MigrationSpec,
    source: MySqlEndpoint,
    destination_factory: Callable[[], MaxComputeDestination],
    log: Callable[[str], None] = lambda message: None,
) -> PrecheckReport:
    report = PrecheckReport(spec.name)
    add = report.results.append
    incremental = "incremental" in spec.migration_types

    # Connectivity first: the other checks need both ends.
    try:
        conn = source.connect_once()  # answers within connect_timeout, even from a silent port
        add(CheckResult("source_connectivity", "passed", f"connected to {source.host}:{source.port} as {source.user}"))
    except pymysql.err.MySQLError as exc:
        add(CheckResult("source_connectivity", "failed", describe_connect_error(source, exc),
                        "check the source connection (host, port, login, password, SSL, network/whitelist)"))
        conn = None
    destination: MaxComputeDestination | None = None
    try:
        destination = destination_factory()
        destination.table_exists("polar_mc_connectivity_probe")
        add(CheckResult("destination_connectivity", "passed", f"reached MaxCompute project {destination.project}"))
    except Exception as exc:  # noqa: BLE001 - any failure here is reported, not raised
        add(CheckResult("destination_connectivity", "failed", f"cannot reach MaxCompute: {exc}", "check the MaxCompute connection (endpoint, project, AccessKey)"))
        destination = None
    if destination is not None:
        add(_check_destination_permissions(destination))

    if conn is None:
        _apply_accepted(report, spec)
        return report
    try:
        _source_checks(spec, conn, destination, incremental, add, log)
    finally:
        conn.close()
    _apply_accepted(report, spec)
    return report


def _check_destination_permissions(destination: MaxComputeDestination) -> CheckResult:
    probe = f"polar_mc_probe_{uuid.uuid4().hex[:12]}"
    try:
        destination.create_table(TableDDL(probe, (DestColumn("id", "bigint"),), comment="polar-mc precheck probe"))
        destination.drop_table(probe)
    except Exception as exc:  # noqa: BLE001
        return CheckResult(
            "destination_permissions",
            "failed",
            f"cannot create and drop a table in project {destination.project}: {exc}",
            "grant the AccessKey's account CreateTable and Drop on the project (or the project owner role)",
        )
    return CheckResult("destination_permissions", "passed", f"can create and drop tables in {destination.project}")


def _source_checks(spec, conn, destination, incremental, add, log) -> None:
    info = server_info(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        account, _, host = cur.fetchone()[0].partition("@")
        user = f"'{account}'@'{host}'"
    log(f"source is {info.flavor} {info.version}, server_id {info.server_id}")
    databases = list_databases(conn, include_system=True)
    source_tables = {db: list_tables(conn, db) for db in spec.source.databases if db in databases}
    missing = missing_objects(spec, source_tables, databases=databases)
    add(
        _result(
            "source_objects",
            [f"{p.path}: {p.message}" for p in missing],
            "every database and table named in the spec exists",
            # information_schema hides objects the account has no privilege on: say so.
            f"correct the names in source.databases / objects[] or create the objects; if they exist, the "
            f"account {user} cannot see them: GRANT SELECT on them",
        )
    )
    selections = select_tables(spec, source_tables, missing="ignore")
    if not selections:
        if not missing:
            reasons = "; ".join(str(problem) for problem in why_nothing_selected(spec, source_tables))
            add(CheckResult("source_tables_selected", "failed", f"the spec selects no table: {reasons}",
                            "check the objects[] include/exclude patterns, or create the tables"))
        return
    log(f"{len(selections)} tables selected")
    described = describe_selected(conn, [(s.source_database, s.source_table) for s in selections])
    tables = [described[s.source_name] for s in selections if s.source_name in described]

    add(check_select_privileges(conn, selections, user))
    if incremental:
        add(check_replication_privileges(conn, user))
        if spec.heartbeat.enabled:
            add(check_heartbeat_privileges(conn, spec.heartbeat_database, spec.heartbeat.table, user))
        for r in check_binlog(info):
            add(r)
        add(check_retention(info))
    add(check_keys(tables))
    add(check_filters(conn, selections, {name: [c.name for c in t.columns] for name, t in described.items()},
                      is_mariadb=info.is_mariadb))

    # Names and types.
    naming_findings = list(spec.naming_findings(selections))
    unmapped: list[str] = []
    unknown_columns: list[str] = []
    loss: list[str] = []
    plans = []
    for s in selections:
        table = described.get(s.source_name)
        if table is None:
            continue
        column_names = [c.name for c in table.columns]
        unknown_columns += [f"{s.source_name}: columns map names unknown column {c!r}" for c in s.unknown_mapped_columns(column_names)]
        naming_findings += naming.find_column_findings(
            s.source_name, column_names, s.columns, rule=spec.additional_column_rule, partition_levels=spec.partition,
            snapshot_partition=naming.SNAPSHOT_PARTITION_COLUMN if s.snapshot_table else None,
        )
        try:
            plan = plan_table(spec, s, table)
        except UnsupportedType as exc:
            unmapped.append(f"{s.source_name}: {exc}")
            continue
        plans.append(plan)
        loss += [f"{s.source_name}.{c.source.name}: {c.mapped.precision_loss}" for c in plan.columns if c.mapped.precision_loss]
    add(_result("column_types", unmapped, "every column type has a MaxCompute mapping", "exclude the table or change the column type (see docs/spec.md, type mapping)"))
    add(_result("precision_loss", loss, "no column loses precision in its mapping", "set datetime_type: timestamp_ntz (keeps microseconds) or accept the warning", severity="warning"))
    add(_result("column_mapping", unknown_columns, "every column rename names an existing column", "correct objects[].tables[].columns"))
    by_code: dict[str, list[naming.NamingFinding]] = {}
    for f in naming_findings:
        by_code.setdefault(f.code, []).append(f)
    for code in ("invalid_name", "table_name_collision", "column_name_collision", "additional_column_collision", "reserved_word"):
        found = by_code.get(code, [])
        severity: Status = "warning" if code == "reserved_word" else "failed"
        fixes = sorted({f.fix for f in found})
        add(_result(code, [f.message for f in found], f"no {code.replace('_', ' ')}", " | ".join(fixes), severity=severity, objects=[o for f in found for o in f.objects]))
    if destination is not None:
        add(_check_destination_tables(spec, plans, destination))


def _check_destination_tables(spec: MigrationSpec, plans, destination: MaxComputeDestination) -> CheckResult:
    """Conflicts with existing destination tables (with schema migration), or missing/incompatible
    tables (without it)."""
    problems: list[str] = []
    objects: list[str] = []
    must_exist = spec.destination_tables_must_exist
    for plan in plans:
        wanted = {d.name.lower(): d for d in plan.ddls}
        required = set(spec.existing_tables_required(plan.selection)) if must_exist else set()
        for name, ddl in wanted.items():
            existing = destination.describe(name)
            if existing is None:
                if name in required:
                    problems.append(f"{name} (for {plan.selection.source_name}) does not exist and schema migration is off")
                    objects.append(name)
                continue
            diffs = compare(ddl, existing)
            if must_exist or spec.conflict_mode == "ignore_and_proceed":
                if diffs:
                    problems.append(f"{name} cannot take the rows of {plan.selection.source_name}: {'; '.join(diffs)}")
                    objects.append(name)
            elif not (is_ours(spec, plan.selection, existing) and not diffs):
                problems.append(f"{name} already exists (conflicts with {plan.selection.source_name})")
                objects.append(name)
    if must_exist:
        fix = "create the destination tables (or enable schema migration), or map the source tables to the existing ones"
    else:
        fix = "drop or rename the existing tables, map the source tables elsewhere (target / batch_rename), or set conflict_mode: ignore_and_proceed when their schema matches"
    return _result("destination_conflicts", problems, "no conflicting destination table", fix, objects=objects)


def _apply_accepted(report: PrecheckReport, spec: MigrationSpec) -> None:
    accepted = set(spec.accepted_warnings)
    report.results = [
        CheckResult(r.check_id, "accepted", r.message + " (accepted in the spec)", r.fix, r.objects)
        if r.status == "warning" and r.check_id in accepted
        else r
        for r in report.results
    ]
