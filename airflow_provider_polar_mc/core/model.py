"""Descriptions shared by several stages, below all of them (see docs/architecture.md).

Plain frozen dataclasses, no I/O: what a source table and its columns are (read by ``source/catalog``),
what a destination table is (rendered and described by ``destination/maxcompute``), where in the binlog
a snapshot or an interval ends (captured by ``binlog/coordinates``), and what a source table becomes
(planned by ``schema_plan``). Every stage package imports these from here and never from another
stage, so the imports of ``core/`` run one way: orchestrators -> stages -> shared rules -> this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: the model stays importable below everything else
    from airflow_provider_polar_mc.core.typemap import MappedType
    from airflow_provider_polar_mc.spec import TableSelection

# --- the source side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnFill:
    """A value rows got without a row event: ``ADD COLUMN column ... DEFAULT`` (or NOT NULL's implicit
    default) at binlog position ``record_id`` gave every row that existed then MySQL's ``text`` (None:
    NULL). The merge applies it to rows whose latest change is older than the DDL."""

    column: str  # source name
    record_id: int  # (file index << 32) | the DDL event's position
    text: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "record_id": self.record_id, "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnFill:
        return cls(str(data["column"]), int(data["record_id"]), data.get("text"))


@dataclass(frozen=True)
class SourceColumn:
    name: str
    ordinal: int
    data_type: str  # lower-case DATA_TYPE, e.g. "bigint"
    column_type: str  # full COLUMN_TYPE, e.g. "bigint(20) unsigned"
    nullable: bool
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    character_set: str | None = None
    generated: bool = False  # virtual/stored generated column

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type.lower()


@dataclass(frozen=True)
class SourceTable:
    database: str
    name: str
    columns: tuple[SourceColumn, ...]
    primary_key: tuple[str, ...] = ()
    not_null_unique_keys: tuple[tuple[str, ...], ...] = ()
    engine: str | None = None
    estimated_rows: int = 0
    data_bytes: int = 0
    charset: str | None = None

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The columns identifying a row: the primary key, else the first NOT NULL unique key, else ()."""
        if self.primary_key:
            return self.primary_key
        return self.not_null_unique_keys[0] if self.not_null_unique_keys else ()

    def column(self, name: str) -> SourceColumn | None:
        lname = name.lower()
        return next((c for c in self.columns if c.name.lower() == lname), None)


@dataclass(frozen=True)
class ServerInfo:
    version: str
    is_mariadb: bool
    is_polardb: bool
    server_id: int
    server_uuid: str | None  # MySQL/PolarDB; MariaDB has none (identity = server_id + first binlog)
    log_bin: bool
    binlog_format: str | None
    binlog_row_image: str | None
    binlog_row_metadata: str | None
    retention_seconds: int | None  # 0 = never purged; None = unknown
    gtid_mode: str | None
    variables: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def flavor(self) -> str:
        return "polardb" if self.is_polardb else "mariadb" if self.is_mariadb else "mysql"


# --- the destination side -------------------------------------------------------------------------


@dataclass(frozen=True)
class DestColumn:
    name: str
    type: str  # MaxCompute type spelling, e.g. "decimal(20,0)"
    comment: str = ""


@dataclass(frozen=True)
class TableDDL:
    name: str
    columns: tuple[DestColumn, ...]
    partition_columns: tuple[DestColumn, ...] = ()
    comment: str = ""
    lifecycle: int | None = None


class SqlDestination(Protocol):
    """What a stage needs to run SQL against the destination's tables (``MaxComputeDestination`` is
    one); lets ``replica/`` build replicas without importing ``destination/``."""

    def describe(self, name: str) -> TableDDL | None: ...

    def create_table(self, ddl: TableDDL, *, if_not_exists: bool = True) -> None: ...

    def add_columns(self, table: str, columns: Sequence[DestColumn]) -> None: ...

    def widen_column(self, table: str, column: str, mc_type: str) -> None: ...

    def partitions(self, name: str) -> list[dict[str, str]]: ...

    def execute(self, sql: str, hints: Mapping[str, str] | None = None) -> Any: ...


# --- the binlog -----------------------------------------------------------------------------------


def binlog_file_index(log_file: str) -> int:
    """The numeric suffix of a binlog file name (mysql-bin.000042 -> 42)."""
    m = re.search(r"\.(\d+)$", log_file)
    if not m:
        raise ValueError(f"binlog file name without a numeric suffix: {log_file!r}")
    return int(m.group(1))


@dataclass(frozen=True)
class BinlogCoordinate:
    log_file: str
    log_pos: int
    gtid: str = ""
    server_id: int = 0
    server_uuid: str = ""
    # Source clock (UNIX_TIMESTAMP). C0: the snapshot time (intervals ending at or before it are empty).
    # An interval's end: the interval's end time, not the capture's (docs/interval-boundaries.md).
    captured_at: float = 0.0

    @property
    def file_index(self) -> int:
        """The numeric suffix of the binlog file (mysql-bin.000042 -> 42)."""
        return binlog_file_index(self.log_file)

    def record_id(self) -> int:
        """The record_id an event at this coordinate would have (``(file index << 32) | position``):
        every row change before the coordinate has a smaller one, every one from it on a larger or equal."""
        return (self.file_index << 32) | self.log_pos

    def key(self) -> tuple[int, int]:
        """Total order of coordinates on one server."""
        return (self.file_index, self.log_pos)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinlogCoordinate:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def __str__(self) -> str:
        return f"{self.log_file}:{self.log_pos}" + (f" (gtid {self.gtid})" if self.gtid else "")


# --- the plan: what a source table becomes ----------------------------------------------------------


@dataclass(frozen=True)
class ColumnPlan:
    source: SourceColumn
    destination: str
    mapped: MappedType


@dataclass(frozen=True)
class TablePlan:
    """What one source table becomes in MaxCompute."""

    selection: TableSelection
    source: SourceTable
    columns: tuple[ColumnPlan, ...]
    base: TableDDL
    log: TableDDL | None

    @property
    def ddls(self) -> tuple[TableDDL, ...]:
        return (self.base,) if self.log is None else (self.base, self.log)

