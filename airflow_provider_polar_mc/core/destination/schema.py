"""Schema migration, the MaxCompute side: compare planned tables with existing ones and create them.

The plan itself (what a source table becomes) is :mod:`airflow_provider_polar_mc.core.schema_plan`;
here the table comment written by the plan is how a re-run tells its own table from a conflicting one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.model import DestColumn, TableDDL, TablePlan
from airflow_provider_polar_mc.core.schema_plan import OWNER_MARK
from airflow_provider_polar_mc.exceptions import SchemaConflict
from airflow_provider_polar_mc.spec import MigrationSpec, TableSelection


def _normalised(ddl: TableDDL) -> tuple:
    def cols(items: Iterable[DestColumn]) -> tuple:
        return tuple((c.name.lower(), c.type.lower().replace(" ", "")) for c in items)

    return cols(ddl.columns), cols(ddl.partition_columns)


def compare(planned: TableDDL, existing: TableDDL) -> list[str]:
    """Differences that stop the migration from writing ``planned`` rows into ``existing``."""
    problems: list[str] = []
    want_cols, want_parts = _normalised(planned)
    have_cols, have_parts = _normalised(existing)
    have = dict(have_cols)
    for name, typ in want_cols:
        if name not in have:
            problems.append(f"column {name} ({typ}) is missing")
        elif have[name] != typ:
            problems.append(f"column {name} is {have[name]}, expected {typ}")
    if want_parts != have_parts:
        problems.append(
            f"partition columns are {[n for n, _ in have_parts] or 'none'}, expected {[n for n, _ in want_parts] or 'none'}"
        )
    return problems


def is_ours(spec: MigrationSpec, selection: TableSelection, existing: TableDDL) -> bool:
    return existing.comment.startswith(f"{OWNER_MARK} {spec.name}:") and selection.source_name in existing.comment


@dataclass(frozen=True)
class TableOutcome:
    table: str
    action: str  # created | exists | kept_existing
    detail: str = ""


def apply_plan(spec: MigrationSpec, plan: TablePlan, destination: MaxComputeDestination) -> list[TableOutcome]:
    """Create the plan's tables; idempotent. An existing table is kept when it is ours with the
    planned schema, or (``ignore_and_proceed``) when it can take every planned column; else
    :class:`SchemaConflict`."""
    outcomes: list[TableOutcome] = []
    for ddl in plan.ddls:
        existing = destination.describe(ddl.name)
        if existing is None:
            destination.create_table(ddl, if_not_exists=True)
            outcomes.append(TableOutcome(ddl.name.lower(), "created"))
            continue
        problems = compare(ddl, existing)
        if is_ours(spec, plan.selection, existing) and not problems:
            outcomes.append(TableOutcome(ddl.name.lower(), "exists", "created by an earlier run"))
        elif spec.conflict_mode == "ignore_and_proceed" and not problems:
            outcomes.append(TableOutcome(ddl.name.lower(), "kept_existing", "conflict_mode: ignore_and_proceed"))
        else:
            reason = "; ".join(problems) if problems else "it was not created by this migration"
            raise SchemaConflict(
                f"destination table {ddl.name.lower()} (for {plan.selection.source_name}) already exists and "
                f"{'cannot take the migrated rows: ' + reason if problems else reason}. Fix: drop or rename it, "
                "map the source table elsewhere (objects[].tables[].target or batch_rename)"
                + ("" if problems else ", or set conflict_mode: ignore_and_proceed to write into it")
            )
    return outcomes


def migrate_schema(
    spec: MigrationSpec,
    plans: Iterable[TablePlan],
    destination: MaxComputeDestination,
    log: Callable[[str], None] = lambda message: None,
) -> list[TableOutcome]:
    outcomes: list[TableOutcome] = []
    for plan in plans:
        for outcome in apply_plan(spec, plan, destination):
            log(f"{plan.selection.source_name} -> {outcome.table}: {outcome.action} {outcome.detail}".rstrip())
            outcomes.append(outcome)
    return outcomes
