"""Which source tables a spec selects, and every destination name each one gets.

The spec says what the user wrote (``objects[]``: listed tables, or every table narrowed by fnmatch
``include``/``exclude`` patterns); this module applies it to what the source has:

* :func:`select_tables`: the :class:`TableSelection` of every selected table, in spec order;
* :func:`missing_objects`: databases and listed tables of the spec the source lacks, each with a
  "did you mean" (the precheck reports them; ``select_tables`` raises ``SourceMismatch`` with them);
* :func:`why_nothing_selected`: when nothing is selected, which ``objects[]`` entry excluded what.

The heartbeat table (written by the migration itself) is never selected. :class:`TableSelection` is
the value type the stages receive; JSON-safe (``to_dict``/``from_dict``) for XCom and dynamic task
mapping. ``airflow_provider_polar_mc.spec`` re-exports it. This module does not import the spec at
run time (the spec re-exports from here), and nothing from Airflow.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_polar_mc.core import filters, naming
from airflow_provider_polar_mc.exceptions import SourceMismatch, SpecProblem

if TYPE_CHECKING:
    from airflow_provider_polar_mc.spec import MigrationSpec

_EMPTY_MAP: Mapping[str, str] = MappingProxyType({})
_SYSTEM_DATABASES = frozenset({"information_schema", "mysql", "performance_schema", "sys"})

SourceTables = Mapping[str, Iterable[str]]  # database -> its tables, as read from the source


@dataclass(frozen=True)
class TableSelection:
    """One source table selected for migration, with every destination name after mapping.

    Destination names are as MaxCompute stores them (lower case); use :meth:`spell` to write them in
    DDL/SQL the way the ``capitalization`` policy asks. ``destination_names`` lists the tables this
    selection will own under the spec's migration types (for collision findings). JSON-safe through
    ``to_dict``/``from_dict`` for XCom and dynamic task mapping.
    """

    source_database: str
    source_table: str
    destination_table: str
    base_table: str
    log_table: str
    replica_table: str
    filter: str | None = None
    snapshot_table: str = ""  # <replica>_snapshot with merge.snapshots, else empty
    columns: Mapping[str, str] = field(default_factory=lambda: _EMPTY_MAP)
    capitalization: naming.Capitalization = "default"
    destination_names: tuple[str, ...] = ()
    spec_path: str = ""  # where in the spec the table was selected, for messages

    @property
    def source_name(self) -> str:
        return f"{self.source_database}.{self.source_table}"

    @property
    def filter_sql(self) -> str | None:
        """The filter as the provider runs it: parsed and rendered by ``core.filters``, never the text."""
        return filters.parse_filter(self.filter).sql if self.filter else None

    def spell(self, name: str) -> str:
        return naming.spell(name, self.capitalization)

    def destination_column(self, source_column: str) -> str:
        return naming.destination_column_name(source_column, self.columns)

    def unknown_mapped_columns(self, source_columns: Iterable[str]) -> list[str]:
        """Keys of the ``columns`` map that name no source column (case-insensitive)."""
        present = {column.lower() for column in source_columns}
        return [column for column in self.columns if column.lower() not in present]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_database": self.source_database,
            "source_table": self.source_table,
            "destination_table": self.destination_table,
            "base_table": self.base_table,
            "log_table": self.log_table,
            "replica_table": self.replica_table,
            "filter": self.filter,
            "snapshot_table": self.snapshot_table,
            "columns": dict(self.columns),
            "capitalization": self.capitalization,
            "destination_names": list(self.destination_names),
            "spec_path": self.spec_path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSelection:
        values = dict(data)
        values["columns"] = MappingProxyType(dict(values.get("columns") or {}))
        values["destination_names"] = tuple(values.get("destination_names") or ())
        return cls(**values)


def with_recorded_tables(source_tables: SourceTables, recorded: Iterable[str]) -> dict[str, list[str]]:
    """The source's tables per database plus every recorded ``db.table`` of those databases that is
    gone from the source now (dropped or renamed since: its changes up to then are still to load
    and merge)."""
    listed = {database: list(tables) for database, tables in source_tables.items()}
    for name in recorded:
        database, table = name.split(".", 1)
        if database in listed and table not in listed[database]:
            listed[database].append(table)
    return listed


def select_tables(
    spec: MigrationSpec,
    source_tables: SourceTables,
    *,
    missing: Literal["error", "ignore"] = "error",
    databases: Iterable[str] | None = None,
) -> list[TableSelection]:
    """The tables ``spec`` selects, in spec order, given the source's tables per database.

    A database or an explicitly listed table absent from ``source_tables`` (or, when given, from
    ``databases``, every database the source has) raises a ``SourceMismatch`` naming every one of
    them (``missing="ignore"`` skips them instead; the precheck uses :func:`missing_objects` to
    report them).
    """
    problems = missing_objects(spec, source_tables, databases=databases)
    if problems and missing == "error":
        raise SourceMismatch(problems, f"migration {spec.name}")
    selections: list[TableSelection] = []
    for index, entry in enumerate(spec.objects):
        available = list(source_tables.get(entry.database, ()))
        if entry.all_tables:
            for table in available:
                if is_heartbeat_table(spec, entry.database, table):
                    continue  # written by the migration itself, never migrated
                if pattern_selects(table, entry.include, entry.exclude):
                    selections.append(_selection(spec, entry.database, table, f"objects[{index}]"))
        else:
            present = set(available)
            for table_index, table in enumerate(entry.tables):
                if table.name in present:
                    selections.append(_selection(spec, entry.database, table.name,
                                                 f"objects[{index}].tables[{table_index}]",
                                                 target=table.target, table_filter=table.filter, columns=table.columns))
    return selections


def missing_objects(
    spec: MigrationSpec, source_tables: SourceTables, databases: Iterable[str] | None = None
) -> list[SpecProblem]:
    """Databases and explicitly listed tables of ``spec`` that the source does not have.

    ``source_tables`` maps each database read from the source to its tables. ``databases``, when
    given, is every database the source has (system ones included): a database of
    ``source.databases`` absent from it is reported at ``source.databases[i]`` (with a "did you
    mean" among them), and not again at the ``objects[]`` entry naming it.
    """
    problems: list[SpecProblem] = []
    reported: set[str] = set()
    if databases is not None:
        existing = list(databases)
        present_databases = set(existing)
        candidates = [name for name in existing if name.lower() not in _SYSTEM_DATABASES] or existing
        for index, database in enumerate(spec.source.databases):
            if database not in present_databases:
                problems.append(SpecProblem(f"source.databases[{index}]", f"database {database!r} not found in the "
                                            f"source{did_you_mean(database, candidates)}"))
                reported.add(database)
    for index, entry in enumerate(spec.objects):
        if entry.database in reported:
            continue
        if entry.database not in source_tables:
            problems.append(SpecProblem(f"objects[{index}].database", f"database {entry.database!r} not found in "
                                        f"the source{did_you_mean(entry.database, source_tables)}"))
            continue
        available = list(source_tables[entry.database])
        present = set(available)
        for table_index, table in enumerate(entry.tables):
            if table.name not in present:
                problems.append(SpecProblem(f"objects[{index}].tables[{table_index}]",
                                            f"table {entry.database}.{table.name} not found in the source"
                                            f"{did_you_mean(table.name, available)}"))
    return problems


def why_nothing_selected(spec: MigrationSpec, source_tables: SourceTables) -> list[SpecProblem]:
    """Why :func:`select_tables` selects no table (call it when it does not): per ``objects[]``
    entry, what the source holds and what the patterns did with it."""
    problems: list[SpecProblem] = []
    for index, entry in enumerate(spec.objects):
        path = f"objects[{index}]"
        available = [table for table in source_tables.get(entry.database, ())
                     if not is_heartbeat_table(spec, entry.database, table)]
        if not entry.all_tables:
            continue  # listed tables are either selected or reported by missing_objects
        if not available:
            problems.append(SpecProblem(f"{path}.database", f"database {entry.database!r} has no tables "
                                                            "(base tables; views are not migrated)"))
            continue
        included = [table for table in available if pattern_selects(table, entry.include, ())]
        if not included:
            problems.append(SpecProblem(f"{path}.include", f"none of the {len(available)} tables of "
                                        f"{entry.database} ({_sample(available)}) matches {list(entry.include)}"))
        else:
            problems.append(SpecProblem(f"{path}.exclude", f"{list(entry.exclude)} excludes every table of "
                                        f"{entry.database} that include selects ({_sample(included)})"))
    if not problems:
        problems.append(SpecProblem("objects", "selects no table"))
    return problems


def pattern_selects(table: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Whether ``table`` matches one of the ``include`` fnmatch patterns (all when there are none) and
    none of ``exclude``; case-insensitively."""
    lowered = table.lower()
    include, exclude = tuple(include), tuple(exclude)
    if include and not any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in exclude)


def is_heartbeat_table(spec: MigrationSpec, database: str, table: str) -> bool:
    """The heartbeat table is written by the migration itself: never selected."""
    return spec.heartbeat.enabled and database == spec.heartbeat_database and table == spec.heartbeat.table


def _selection(
    spec: MigrationSpec,
    database: str,
    table: str,
    path: str,
    *,
    target: str | None = None,
    table_filter: str | None = None,
    columns: Mapping[str, str] = _EMPTY_MAP,
) -> TableSelection:
    destination = naming.destination_table_name(
        table, target=target, prefix=spec.batch_rename.prefix, suffix=spec.batch_rename.suffix
    )
    base = naming.base_table_name(destination)
    log = naming.log_table_name(destination)
    replica = naming.replica_table_name(destination, spec.merge.replica_name, database)
    owned: list[str] = []
    if "schema" in spec.migration_types or "full" in spec.migration_types:
        owned.append(base)
    if "incremental" in spec.migration_types:
        owned.append(log)
    snapshot = ""
    if spec.merge_active:
        owned.append(replica)
        if spec.merge.snapshots != "none":
            snapshot = naming.snapshot_table_name(replica)
            owned.append(snapshot)
    return TableSelection(
        source_database=database, source_table=table,
        destination_table=destination, base_table=base, log_table=log, replica_table=replica,
        snapshot_table=snapshot, filter=table_filter, columns=MappingProxyType({src: naming.stored_name(dst) for src, dst in columns.items()}),
        capitalization=spec.capitalization, destination_names=tuple(owned), spec_path=path,
    )


def did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest candidate (or one equal but for case), or ""."""
    candidates = list(candidates)
    matches = difflib.get_close_matches(value, candidates, n=1, cutoff=0.6)
    if not matches:
        matches = [candidate for candidate in candidates if candidate.lower() == value.lower()]
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _sample(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


__all__ = ["TableSelection", "is_heartbeat_table", "missing_objects", "pattern_selects", "select_tables",
           "why_nothing_selected"]
