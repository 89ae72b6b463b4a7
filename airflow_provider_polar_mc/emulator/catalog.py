"""Table metadata of the emulated MaxCompute: what a table is, independent of how it is stored or served."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .types import MCType

# MaxCompute object names: letters, digits and underscores, starting with a letter (or underscore),
# at most 128 characters; they are case-insensitive and stored lower-case.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class InvalidName(ValueError):
    """An object name MaxCompute would reject."""


def normalize_name(name: str, what: str = "name") -> str:
    """Validate a MaxCompute table/column/partition name and return its canonical (lower-case) form."""
    if not _NAME_RE.match(name or ""):
        raise InvalidName(f"invalid {what} {name!r}: use letters, digits and '_', start with a letter, <= 128 chars")
    return name.lower()


@dataclass(frozen=True)
class Column:
    name: str
    type: MCType
    comment: str = ""
    nullable: bool = True


@dataclass(frozen=True)
class TableMeta:
    project: str
    name: str
    columns: tuple[Column, ...]
    partition_columns: tuple[Column, ...] = ()
    comment: str = ""
    lifecycle: int | None = None
    created_at: float = 0.0  # unix seconds
    modified_at: float = 0.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_partitioned(self) -> bool:
        return bool(self.partition_columns)

    def column(self, name: str) -> Column | None:
        lname = name.lower()
        for c in (*self.columns, *self.partition_columns):
            if c.name == lname:
                return c
        return None


def storage_table(project: str, name: str) -> str:
    """The quoted DuckDB identifier of the table holding a MaxCompute table's rows.

    Data columns keep their names; partition columns are extra VARCHAR columns of the same table.
    """
    return f'"mc__{project.lower()}__{name.lower()}"'


PartitionSpec = dict[str, str]  # ordered as the table's partition columns


def parse_partition_spec(text: str) -> PartitionSpec:
    """Parse ``a='1',b=2`` or ``a=1/b=2`` (the forms pyodps and MaxCompute use) into an ordered dict."""
    spec: PartitionSpec = {}
    text = (text or "").strip()
    if not text:
        return spec
    parts = re.split(r"\s*[,/]\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*=)", text)
    for part in parts:
        if "=" not in part:
            raise InvalidName(f"malformed partition spec {text!r}")
        key, value = part.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        spec[normalize_name(key.strip(), "partition column")] = value
    return spec


def format_partition_spec(spec: Mapping[str, str]) -> str:
    """MaxCompute's canonical rendering: ``a='1',b='2'``."""
    return ",".join(f"{k}='{v}'" for k, v in spec.items())
