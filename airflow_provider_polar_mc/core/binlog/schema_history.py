"""Schema history: one source table's columns as of a binlog coordinate, tracked through DDL.

Rows are decoded against the schema in force when they were written, never today's
``information_schema``: the history starts from the schema recorded at the full load's snapshot (or at
the end of the previous interval) and :meth:`TableSchema.with_added_column` follows every ``ADD
COLUMN`` the reader meets. ``TableSchema`` is JSON-safe (``to_dict``/``from_dict``) so the checkpoint
store can keep it per interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from airflow_provider_polar_mc.core.binlog.ddl import AddedColumn
from airflow_provider_polar_mc.core.model import ColumnFill, SourceColumn, SourceTable
from airflow_provider_polar_mc.core.selection import TableSelection

# The start of ``stopped_reason`` for a table stopped until a resync loads it again.
RESYNC_REASON = "resync needed: "


@dataclass(frozen=True)
class TableSchema:
    """One source table's columns and key columns at a coordinate (JSON-safe via to_dict/from_dict).

    ``collations`` (column name -> collation, optional) lets filters compare text the way the column
    does; ``default_charset`` is the table's, for columns added later without an explicit one.
    """

    database: str
    table: str
    columns: tuple[SourceColumn, ...]
    key_columns: tuple[str, ...] = ()
    default_charset: str | None = None
    collations: Mapping[str, str] = field(default_factory=dict)
    # Values ADD COLUMN gave existing rows (DEFAULT x, NOT NULL's implicit default), for the merge.
    fills: tuple[ColumnFill, ...] = ()
    # Binlog positions (record_ids) of TRUNCATE TABLE: every row changed before one is gone.
    truncated_at: tuple[int, ...] = ()
    # Columns DROP COLUMN removed (their MaxCompute columns stay; later rows carry NULL there).
    dropped: tuple[SourceColumn, ...] = ()
    # Renamed columns: current source name -> the name the column had when the migration started; its
    # MaxCompute column keeps that name's mapping, so old and new events land in one column.
    renamed: Mapping[str, str] = field(default_factory=dict)
    # DROP TABLE, or RENAME TABLE out of the selection, at this record_id: the table's later events are
    # not migrated (the replica keeps its state as of then).
    stopped_at: int | None = None
    stopped_reason: str = ""
    # A resync (core/resync.py) re-loaded the table's _base at this record_id: ``generation`` counts
    # them (0: the setup's full load), and the table's events at or before ``resumes_after`` are in
    # that _base, so the batch skips them.
    generation: int = 0
    resumes_after: int | None = None

    @property
    def awaits_resync(self) -> bool:
        """Stopped by a change the batch could not follow: a resync (core/resync.py) takes it back."""
        return self.stopped_at is not None and self.stopped_reason.startswith(RESYNC_REASON)

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> SourceColumn | None:
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    @classmethod
    def from_source_table(cls, table: SourceTable, collations: Mapping[str, str] | None = None) -> TableSchema:
        return cls(
            database=table.database,
            table=table.name,
            columns=tuple(table.columns),
            key_columns=tuple(table.key_columns),
            default_charset=table.charset,
            collations=dict(collations or {}),
        )

    def as_source_table(self) -> SourceTable:
        primary = self.key_columns
        return SourceTable(self.database, self.table, self.columns, primary_key=primary, charset=self.default_charset)

    def with_added_column(self, added: AddedColumn, record_id: int | None = None) -> TableSchema:
        """The schema after one ``ADD COLUMN`` (position FIRST / AFTER x / last) at binlog position
        ``record_id``; a value it gives existing rows (known from the statement) is kept as a fill."""
        column = added.column
        if column.data_type in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"):
            if column.character_set is None:
                column = replace(column, character_set=self.default_charset or "utf8mb4")
        columns = list(self.columns)
        if added.first:
            index = 0
        elif added.after is not None:
            names = [c.name.lower() for c in columns]
            if added.after.lower() not in names:
                raise ValueError(f"AFTER {added.after}: no such column in {self.name}")
            index = names.index(added.after.lower()) + 1
        else:
            index = len(columns)
        columns.insert(index, column)
        renumbered = tuple(replace(c, ordinal=i + 1) for i, c in enumerate(columns))
        collations = dict(self.collations)
        if added.collation:
            collations[column.name] = added.collation
        fills = self.fills
        existing = added.existing_rows
        if existing is not None and existing.known and record_id is not None:
            fills = (*fills, ColumnFill(column.name, record_id, existing.text))
        return replace(self, columns=renumbered, collations=collations, fills=fills)

    def without_column(self, name: str) -> TableSchema:
        """The schema after ``DROP COLUMN name`` (kept in ``dropped``: its MaxCompute column stays)."""
        column = self.column(name)
        if column is None:
            raise ValueError(f"DROP COLUMN {name}: no such column in {self.name}")
        if column.name.lower() in {k.lower() for k in self.key_columns}:
            raise ValueError(f"DROP COLUMN {name}: a column of the primary key of {self.name}")
        kept = [c for c in self.columns if c is not column]
        renumbered = tuple(replace(c, ordinal=i + 1) for i, c in enumerate(kept))
        collations = {k: v for k, v in self.collations.items() if k.lower() != column.name.lower()}
        return replace(self, columns=renumbered, collations=collations, dropped=(*self.dropped, column))

    def with_renamed_column(self, old: str, new: str) -> TableSchema:
        """The schema after ``RENAME COLUMN old TO new`` (same definition)."""
        column = self.column(old)
        if column is None:
            raise ValueError(f"RENAME COLUMN {old}: no such column in {self.name}")
        if self.column(new) is not None and new.lower() != old.lower():
            raise ValueError(f"RENAME COLUMN {old} TO {new}: {self.name} has a column {new} already")
        if column.name.lower() in {k.lower() for k in self.key_columns}:
            raise ValueError(f"RENAME COLUMN {old}: a column of the primary key of {self.name}")
        if any(d.name.lower() == new.lower() for d in self.dropped):
            raise ValueError(f"RENAME COLUMN {old} TO {new}: {new} was dropped earlier; its MaxCompute column holds other values")
        columns = tuple(replace(c, name=new) if c is column else c for c in self.columns)
        renamed = {k: v for k, v in self.renamed.items() if k.lower() != column.name.lower()}
        original = next((v for k, v in self.renamed.items() if k.lower() == column.name.lower()), column.name)
        if original.lower() != new.lower():
            renamed[new] = original
        collations = {(new if k.lower() == column.name.lower() else k): v for k, v in self.collations.items()}
        fills = tuple(replace(f, column=new) if f.column.lower() == column.name.lower() else f for f in self.fills)
        return replace(self, columns=columns, renamed=renamed, collations=collations, fills=fills)

    def with_column_definition(self, name: str, column: SourceColumn) -> TableSchema:
        """The schema after ``MODIFY name <definition>`` that keeps the column's place and name."""
        current = self.column(name)
        if current is None:
            raise ValueError(f"MODIFY {name}: no such column in {self.name}")
        if column.character_set is None and current.character_set is not None:
            column = replace(column, character_set=current.character_set)
        changed = replace(column, name=current.name, ordinal=current.ordinal)
        return replace(self, columns=tuple(changed if c is current else c for c in self.columns))

    def destination_selection(self, selection: TableSelection) -> TableSelection:
        """``selection`` with renamed columns mapped to their original columns' destination names."""
        if not self.renamed:
            return selection
        mapping = dict(selection.columns)
        mapping.update({new: selection.destination_column(original) for new, original in self.renamed.items()})
        return replace(selection, columns=MappingProxyType(mapping))

    def with_stop(self, record_id: int, reason: str) -> TableSchema:
        """The table leaves the migration at ``record_id`` (``reason``: DROP TABLE, RENAME TABLE to x)."""
        return replace(self, stopped_at=record_id, stopped_reason=reason)

    def with_truncate(self, record_id: int) -> TableSchema:
        """The table after ``TRUNCATE TABLE`` at binlog position ``record_id`` (its columns unchanged)."""
        return replace(self, truncated_at=(*self.truncated_at, record_id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "columns": [_column_dict(c) for c in self.columns],
            "key_columns": list(self.key_columns),
            "default_charset": self.default_charset,
            "collations": dict(self.collations),
            "fills": [f.to_dict() for f in self.fills],
            "truncated_at": list(self.truncated_at),
            "dropped": [_column_dict(c) for c in self.dropped],
            "renamed": dict(self.renamed),
            "stopped_at": self.stopped_at,
            "stopped_reason": self.stopped_reason,
            "generation": self.generation,
            "resumes_after": self.resumes_after,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(
            database=data["database"],
            table=data["table"],
            columns=tuple(SourceColumn(**c) for c in data["columns"]),
            key_columns=tuple(data.get("key_columns") or ()),
            default_charset=data.get("default_charset"),
            collations=dict(data.get("collations") or {}),
            fills=tuple(ColumnFill.from_dict(f) for f in data.get("fills") or ()),
            truncated_at=tuple(int(r) for r in data.get("truncated_at") or ()),
            dropped=tuple(SourceColumn(**c) for c in data.get("dropped") or ()),
            renamed=dict(data.get("renamed") or {}),
            stopped_at=data.get("stopped_at"),
            stopped_reason=data.get("stopped_reason") or "",
            generation=int(data.get("generation") or 0),
            resumes_after=data.get("resumes_after"),
        )



def _column_dict(c: SourceColumn) -> dict[str, Any]:
    return {
        "name": c.name, "ordinal": c.ordinal, "data_type": c.data_type, "column_type": c.column_type,
        "nullable": c.nullable, "numeric_precision": c.numeric_precision, "numeric_scale": c.numeric_scale,
        "datetime_precision": c.datetime_precision, "character_set": c.character_set, "generated": c.generated,
    }  # fmt: skip
