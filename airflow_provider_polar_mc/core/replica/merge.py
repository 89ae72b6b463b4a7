"""The merged replica: `_base` plus `_log` partitions up to an interval, as the source looked then.

Built entirely in MaxCompute SQL (it scales with MaxCompute, not with the Airflow worker), with the DTS
merge rule: every base row counts as ``record_id = 0``, an insert after-image; per primary key the row
with the highest ``record_id`` wins (ties: the after-image first, so an UPDATE's after-image beats its
before-image); the key survives only when that row is an after-image (``after_flag = 'Y'``). Deletes
carry ``after_flag = 'N'`` and disappear. A primary-key UPDATE leaves the old key's before-image as its
latest row (gone) and the new key's after-image (kept): exactly a delete plus an insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.model import DestColumn, SqlDestination, TableDDL


@dataclass(frozen=True)
class MergeTarget:
    base_table: str
    log_table: str
    replica_table: str
    key_columns: tuple[str, ...]  # destination names
    record_id: str  # additional column names under the spec's rule
    after_flag: str
    partition_columns: tuple[str, ...]


def up_to_partition_predicate(columns: Sequence[str], values: Sequence[str]) -> str:
    """``(c1, c2, ...) <= (v1, v2, ...)`` lexicographically, spelled out (partition values are
    zero-padded strings, so string order is time order)."""
    terms = []
    for i, column in enumerate(columns):
        equal = [f"{sqltext.quote_mc_name(columns[j])} = {sqltext.mc_string(values[j])}" for j in range(i)]
        last = i == len(columns) - 1
        bound = f"{sqltext.quote_mc_name(column)} {'<=' if last else '<'} {sqltext.mc_string(values[i])}"
        terms.append("(" + " AND ".join([*equal, bound]) + ")")
    return "(" + " OR ".join(terms) + ")"


def merge_sql(target: MergeTarget, data_columns: Sequence[str], partition_values: Sequence[str]) -> str:
    cols = ", ".join(sqltext.quote_mc_name(c) for c in data_columns)
    keys = ", ".join(sqltext.quote_mc_name(c) for c in target.key_columns)
    rid, after = sqltext.quote_mc_name(target.record_id), sqltext.quote_mc_name(target.after_flag)
    return (
        f"INSERT OVERWRITE TABLE {sqltext.quote_mc_name(target.replica_table)}\n"
        f"SELECT {cols} FROM (\n"
        f"  SELECT {cols}, {after} AS merge_after_flag,\n"
        f"         ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {rid} DESC, {after} DESC) AS merge_rank\n"
        f"  FROM (\n"
        f"    SELECT {cols}, CAST(0 AS BIGINT) AS {rid}, 'Y' AS {after} FROM {sqltext.quote_mc_name(target.base_table)}\n"
        f"    UNION ALL\n"
        f"    SELECT {cols}, {rid}, {after} FROM {sqltext.quote_mc_name(target.log_table)}\n"
        f"    WHERE {up_to_partition_predicate(target.partition_columns, partition_values)}\n"
        f"  ) merge_rows\n"
        f") ranked\n"
        f"WHERE merge_rank = 1 AND merge_after_flag = 'Y';"
    )


def ensure_replica(destination: SqlDestination, target: MergeTarget, comment: str) -> list[str]:
    """Create the replica with the base table's columns, or add the base's newer columns to it.
    Returns the data columns (the base table's, in order)."""
    base = destination.describe(target.base_table)
    if base is None:
        raise LookupError(f"base table {target.base_table} does not exist: run the schema migration first")
    replica = destination.describe(target.replica_table)
    if replica is None:
        destination.create_table(TableDDL(target.replica_table, base.columns, comment=comment), if_not_exists=True)
    else:
        have = {c.name.lower() for c in replica.columns}
        missing = [DestColumn(c.name, c.type, c.comment) for c in base.columns if c.name.lower() not in have]
        destination.add_columns(target.replica_table, missing)
    return [c.name for c in base.columns]


def build_replica(destination: SqlDestination, target: MergeTarget, partition_values: Sequence[str], comment: str) -> str:
    """(Re)build the replica as of the interval whose partition values are given; returns the SQL run."""
    columns = ensure_replica(destination, target, comment)
    sql = merge_sql(target, columns, partition_values)
    destination.execute(sql)
    return sql
