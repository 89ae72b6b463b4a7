"""The merged replica in MaxCompute SQL: one merge step is a previous state plus a range of `_log`
partitions, written as the replica or as one partition of its snapshot table.

Built entirely in MaxCompute SQL (it scales with MaxCompute, not with the Airflow worker), with the DTS
merge rule: every row of the starting state (``_base``, the replica, or a snapshot partition) counts as
``record_id = 0``, an insert after-image; per primary key the row with the highest ``record_id`` wins
(ties: the after-image first, so an UPDATE's after-image beats its before-image); the key survives only
when that row is an after-image (``after_flag = 'Y'``). Deletes carry ``after_flag = 'N'`` and
disappear. A primary-key UPDATE leaves the old key's before-image as its latest row (gone) and the new
key's after-image (kept): exactly a delete plus an insert.

Why a step may start from any earlier state (docs/merge.md): a state holds, per key, the surviving
after-image of the latest change up to its time, and every `_log` row after that time has a higher
``record_id`` than any before it. So merge(merge(S, L1), L2) == merge(S, L1 + L2), and a step reads the
previous state plus the new partitions only, never all of history. Re-applying partitions a state
already holds gives the same state (their rows outrank the state's ``record_id = 0``), which makes a
step that died after its overwrite safe to run again.

Which steps run, and from which state, is decided by ``core/merging.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.model import DestColumn, SqlDestination, TableDDL
from airflow_provider_polar_mc.core.naming import SNAPSHOT_PARTITION_COLUMN
from airflow_provider_polar_mc.core.schema_plan import evolve_columns
from airflow_provider_polar_mc.exceptions import ConfigError


@dataclass(frozen=True)
class MergeTarget:
    base_table: str
    log_table: str
    replica_table: str
    key_columns: tuple[str, ...]  # destination names
    record_id: str  # additional column names under the spec's rule
    after_flag: str
    partition_columns: tuple[str, ...]
    snapshot_table: str = ""  # <replica>_snapshot, partitioned by ds (merge.snapshots); "" without
    fills: tuple[MergeFill, ...] = ()  # values ADD COLUMN gave existing rows
    truncated_at: tuple[int, ...] = ()  # record_ids of TRUNCATE TABLE: rows changed before are gone
    # A resync (core/resync.py) loaded _base again at this record_id: a step reaching past it starts
    # from that _base and takes only the _log rows from there on.
    base_record_id: int | None = None
    # Columns whose _log type is wider than the _base's (a narrowing resynced): cast to the _base's.
    casts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeFill:
    """``ADD COLUMN column`` at binlog position ``record_id`` gave the rows that existed then the value
    ``literal`` (MaxCompute SQL) that no row event carries: the merge gives it to every row whose
    latest change is older (`_base` and `_log` keep NULL there, as DTS does)."""

    column: str  # destination name
    record_id: int
    literal: str


@dataclass(frozen=True)
class ReplicaState:
    """A state of the replica a step starts from or writes: ``_base`` (the full load), the replica
    table, or the snapshot partition ``ds``."""

    kind: Literal["base", "replica", "snapshot"]
    ds: str = ""

    def describe(self, target: MergeTarget) -> str:
        if self.kind == "snapshot":
            return f"{target.snapshot_table} ({SNAPSHOT_PARTITION_COLUMN}={self.ds})"
        return target.base_table if self.kind == "base" else target.replica_table


BASE = ReplicaState("base")
REPLICA = ReplicaState("replica")


def snapshot(ds: str) -> ReplicaState:
    return ReplicaState("snapshot", ds)


@dataclass(frozen=True)
class LogRange:
    """The `_log` partitions whose values lie in [first, last] (``first`` None: from the first one)."""

    first: tuple[str, ...] | None
    last: tuple[str, ...]


def _lexicographic(columns: Sequence[str], values: Sequence[str], less: str, last_op: str) -> str:
    """``(c1, c2, ...) <op> (v1, v2, ...)`` lexicographically, spelled out (partition values are
    zero-padded strings, so string order is time order)."""
    terms = []
    for i, column in enumerate(columns):
        equal = [f"{sqltext.quote_mc_name(columns[j])} = {sqltext.mc_string(values[j])}" for j in range(i)]
        op = last_op if i == len(columns) - 1 else less
        terms.append("(" + " AND ".join([*equal, f"{sqltext.quote_mc_name(column)} {op} {sqltext.mc_string(values[i])}"]) + ")")
    return "(" + " OR ".join(terms) + ")"


def up_to_partition_predicate(columns: Sequence[str], values: Sequence[str]) -> str:
    """Partitions at or before ``values``."""
    return _lexicographic(columns, values, "<", "<=")


def from_partition_predicate(columns: Sequence[str], values: Sequence[str]) -> str:
    """Partitions at or after ``values``."""
    return _lexicographic(columns, values, ">", ">=")


def log_range_predicate(columns: Sequence[str], logs: LogRange) -> str:
    upper = up_to_partition_predicate(columns, logs.last)
    return upper if logs.first is None else f"{from_partition_predicate(columns, logs.first)} AND {upper}"


def _filled(columns: Sequence[str], fills: Sequence[MergeFill], record_id: str | None) -> str:
    """The column list with the fills applied: every row (``record_id`` None: a state older than the
    fills) or the rows older than each fill's DDL get its value."""
    by_column = {f.column.lower(): f for f in fills}
    parts = []
    for c in columns:
        quoted = sqltext.quote_mc_name(c)
        fill = by_column.get(c.lower())
        if fill is None:
            parts.append(quoted)
        elif record_id is None:
            parts.append(f"{fill.literal} AS {quoted}")
        else:
            parts.append(f"CASE WHEN {record_id} < {int(fill.record_id)} THEN {fill.literal} ELSE {quoted} END AS {quoted}")
    return ", ".join(parts)


def _state_rows(target: MergeTarget, state: ReplicaState, cols: str) -> str:
    """``SELECT cols FROM <state>`` (a snapshot read names its partition: MaxCompute refuses full scans)."""
    if state.kind == "snapshot":
        ds = sqltext.quote_mc_name(SNAPSHOT_PARTITION_COLUMN)
        return (
            f"SELECT {cols} FROM {sqltext.quote_mc_name(target.snapshot_table)} "
            f"WHERE {ds} = {sqltext.mc_string(state.ds)}"
        )
    return f"SELECT {cols} FROM {sqltext.quote_mc_name(state.describe(target))}"


def _write_clause(target: MergeTarget, into: ReplicaState, data_columns: Sequence[str]) -> str:
    # The columns by name: a snapshot table made before a resync keeps columns the new _base lacks.
    names = ", ".join(sqltext.quote_mc_name(c) for c in data_columns)
    if into.kind == "base":
        raise ValueError("a merge never writes the base table")
    if into.kind == "snapshot":
        partition = sqltext.mc_partition_spec([SNAPSHOT_PARTITION_COLUMN], [into.ds])
        return f"INSERT OVERWRITE TABLE {sqltext.quote_mc_name(target.snapshot_table)} PARTITION ({partition}) ({names})"
    return f"INSERT OVERWRITE TABLE {sqltext.quote_mc_name(target.replica_table)} ({names})"


def merge_step_sql(
    target: MergeTarget,
    data_columns: Sequence[str],
    start: ReplicaState,
    logs: LogRange | None,
    into: ReplicaState,
    fills: Sequence[MergeFill] = (),
    truncated_at: int | None = None,
    log_from: int | None = None,
) -> str:
    """One statement: ``into`` := ``start`` merged with the `_log` partitions of ``logs`` (a plain copy
    when ``logs`` is None). ``fills``: the ones whose DDL lies between the start state and the end of
    ``logs``; ``truncated_at``: the last TRUNCATE TABLE there (the start state and the log rows before
    it are dropped); ``log_from``: only the log rows from this record_id on (the start state, a
    resynced ``_base``, holds the earlier ones); the caller knows the coordinates. Reading and overwriting the same table is fine:
    MaxCompute (and the emulator) compute the query before replacing the data."""
    cols = ", ".join(sqltext.quote_mc_name(c) for c in data_columns)
    write = _write_clause(target, into, data_columns)
    if logs is None:
        return f"{write}\n{_state_rows(target, start, _filled(data_columns, fills, None))};"
    keys = ", ".join(sqltext.quote_mc_name(c) for c in target.key_columns)
    rid, after = sqltext.quote_mc_name(target.record_id), sqltext.quote_mc_name(target.after_flag)
    start_cols = _filled(data_columns, fills, None)
    start_rows = _state_rows(target, start, f"{start_cols}, CAST(0 AS BIGINT) AS {rid}, 'Y' AS {after}")
    log_where = log_range_predicate(target.partition_columns, logs)
    if truncated_at is not None:
        log_where += f" AND {rid} >= {int(truncated_at)}"
    if log_from is not None:
        log_where += f" AND {rid} >= {int(log_from)}"
    log_rows = (
        f"SELECT {_filled(data_columns, fills, rid)}, {rid}, {after} FROM {sqltext.quote_mc_name(target.log_table)}\n"
        f"    WHERE {log_where}"
    )
    union = log_rows if truncated_at is not None else f"{start_rows}\n    UNION ALL\n    {log_rows}"
    outer = cols
    if target.casts:
        by_name = {k.lower(): v for k, v in target.casts.items()}
        outer = ", ".join(
            f"CAST({sqltext.quote_mc_name(c)} AS {by_name[c.lower()]}) AS {sqltext.quote_mc_name(c)}" if c.lower() in by_name
            else sqltext.quote_mc_name(c)
            for c in data_columns
        )  # fmt: skip
    return (
        f"{write}\n"
        f"SELECT {outer} FROM (\n"
        f"  SELECT {cols}, {after} AS merge_after_flag,\n"
        f"         ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {rid} DESC, {after} DESC) AS merge_rank\n"
        f"  FROM (\n"
        f"    {union}\n"
        f"  ) merge_rows\n"
        f") ranked\n"
        f"WHERE merge_rank = 1 AND merge_after_flag = 'Y';"
    )


def merge_sql(target: MergeTarget, data_columns: Sequence[str], partition_values: Sequence[str]) -> str:
    """The full rebuild: the replica := ``_base`` merged with every `_log` partition up to ``partition_values``."""
    return merge_step_sql(target, data_columns, BASE, LogRange(None, tuple(partition_values)), REPLICA)


def _ensure_like_base(destination: SqlDestination, name: str, base: TableDDL, ddl: TableDDL) -> None:
    if destination.describe(name) is None:
        destination.create_table(ddl, if_not_exists=True)
        return
    refused = evolve_columns(destination, name, base.columns).refused
    if refused:
        raise ConfigError(
            f"{name} cannot take the columns of {base.name}: {'; '.join(refused)}. Fix: if {name} is the replica, "
            "drop it (the next merge rebuilds it from the base and the log); a snapshot table keeps older days in "
            "the old type, so map the source table to a new target (objects[].tables[].target) and run the setup"
        )


def ensure_replica(
    destination: SqlDestination, target: MergeTarget, comment: str, *, snapshot_lifecycle_days: int | None = None
) -> list[str]:
    """Create the replica (and, with ``target.snapshot_table``, its snapshot table partitioned by ``ds``
    with a lifecycle) with the base table's columns, or add the base's newer columns to them and widen
    those the base widened. Returns
    the data columns (the base table's, in order)."""
    base = destination.describe(target.base_table)
    if base is None:
        raise LookupError(f"base table {target.base_table} does not exist: run the schema migration first")
    if any(c.name.lower() == SNAPSHOT_PARTITION_COLUMN for c in base.columns) and target.snapshot_table:
        raise ConfigError(
            f"{target.base_table} has a column {SNAPSHOT_PARTITION_COLUMN!r}, the partition column of the snapshot "
            f"table {target.snapshot_table}: rename it (columns map) or set merge.snapshots: none"
        )
    _ensure_like_base(destination, target.replica_table, base, TableDDL(target.replica_table, base.columns, comment=comment))
    if target.snapshot_table:
        ddl = TableDDL(
            target.snapshot_table,
            base.columns,
            (DestColumn(SNAPSHOT_PARTITION_COLUMN, "string", "the replica as of the end of this day or hour (UTC)"),),
            comment=f"{comment}: point-in-time snapshots",
            lifecycle=snapshot_lifecycle_days,
        )
        _ensure_like_base(destination, target.snapshot_table, base, ddl)
    return [c.name for c in base.columns]


def run_step(
    destination: SqlDestination,
    target: MergeTarget,
    data_columns: Sequence[str],
    start: ReplicaState,
    logs: LogRange | None,
    into: ReplicaState,
    fills: Sequence[MergeFill] = (),
    truncated_at: int | None = None,
    log_from: int | None = None,
) -> str:
    """Run one merge step; returns the SQL run."""
    sql = merge_step_sql(target, data_columns, start, logs, into, fills, truncated_at, log_from)
    destination.execute(sql)
    return sql


def build_replica(destination: SqlDestination, target: MergeTarget, partition_values: Sequence[str], comment: str) -> str:
    """(Re)build the replica from the base as of the interval whose partition values are given; returns the SQL run."""
    columns = ensure_replica(destination, target, comment)
    return run_step(destination, target, columns, BASE, LogRange(None, tuple(partition_values)), REPLICA, target.fills)
