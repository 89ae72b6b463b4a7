"""The resync's pure decisions: which MaxCompute column takes a narrowed type, and what the merge of an
interval uses for a table with a resync record (core/resync.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.resync import merge_base
from airflow_provider_polar_mc.core.typemap import holds, widens_in_place

AT = BinlogCoordinate("mysql-bin.000003", 4000)


@pytest.mark.parametrize(("existing", "new", "expected"), [
    ("int", "smallint", True), ("bigint", "tinyint", True), ("smallint", "int", False),
    ("decimal(20,6)", "decimal(12,6)", True), ("decimal(20,6)", "decimal(12,7)", False),
    ("decimal(20,6)", "decimal(30,6)", False), ("decimal(20,0)", "bigint", True), ("decimal(12,2)", "bigint", False),
    ("double", "float", True), ("float", "double", False), ("string", "string", True), ("string", "int", False),
    ("DECIMAL(10, 2)", "decimal(10,2)", True),
])  # fmt: skip
def test_a_wider_column_takes_a_narrowed_type_and_nothing_else(existing, new, expected):
    assert holds(existing, new) is expected


@pytest.mark.parametrize(("existing", "new", "expected"), [
    ("int", "bigint", True), ("tinyint", "smallint", True), ("bigint", "int", False), ("int", "int", False),
    ("float", "double", True), ("decimal(10,2)", "decimal(14,4)", True), ("decimal(10,2)", "decimal(10,3)", False),
    ("varchar(10)", "varchar(20)", True), ("varchar(10)", "string", True), ("varchar(20)", "varchar(10)", False),
    ("int", "decimal(20,0)", False), ("bigint", "string", False),
])  # fmt: skip
def test_only_the_type_changes_maxcompute_makes_in_place_are_widenings(existing, new, expected):
    """Integer -> DECIMAL holds every value but is no in-place change MaxCompute documents: a resync."""
    assert widens_in_place(existing, new) is expected


def test_the_merge_waits_for_a_resync_reaching_its_interval_and_then_starts_from_its_base():
    before, after = AT.record_id() - 1, AT.record_id() + 10
    assert merge_base(None, after) == (None, None, None)
    assert merge_base({"status": "requested"}, after) == (None, None, None)
    waits, _, _ = merge_base({"status": "pending"}, after)
    assert waits and "waiting" in waits
    loading = {"status": "loading", "coordinate": AT.to_dict()}
    assert merge_base(loading, before) == (None, None, None)  # an interval before the resync: the old _base
    assert merge_base(loading, after)[0]
    done = {"status": "done", "coordinate": AT.to_dict(), "base_load": "u1"}
    assert merge_base(done, after) == (None, AT.record_id(), "u1")
    assert "cannot be rebuilt" in merge_base(done, before)[0]


class _Store:
    """A CheckpointStore in memory (the Protocol's four methods)."""

    def __init__(self):
        self.rows: dict[tuple[str, str], dict] = {}

    def get(self, kind, key):
        return self.rows.get((kind, key))

    def put(self, kind, key, value):
        self.rows[(kind, key)] = dict(value)

    def put_once(self, kind, key, value):
        return self.rows.setdefault((kind, key), dict(value))

    def items(self, kind):
        return {k: v for (s, k), v in self.rows.items() if s == kind}


def test_a_stop_asks_for_one_resync_and_a_re_run_before_it_asks_for_none():
    from airflow_provider_polar_mc.core.resync import RESYNC_KIND, request_resync, requested_resyncs

    store = _Store()
    stop = AT.record_id() - 100
    assert request_resync(store, "db.t", "resync needed: MODIFY", stop)
    assert not request_resync(store, "db.t", "resync needed: MODIFY", stop)  # the next interval, still stopped
    assert requested_resyncs(store) == ["db.t"]
    store.put(RESYNC_KIND, "db.t", {"status": "done", "generation": 1, "coordinate": AT.to_dict(), "base_load": "u"})
    assert not request_resync(store, "db.t", "resync needed: MODIFY", stop)  # a re-run of the stopping interval
    assert requested_resyncs(store) == []
    assert request_resync(store, "db.t", "resync needed: a later change", AT.record_id() + 5)
    assert store.get(RESYNC_KIND, "db.t")["generation"] == 1  # the next resync makes generation 2


@pytest.mark.parametrize("migration_types", [["schema", "full", "incremental"], ["schema", "full"]])
def test_a_setup_run_reloads_loaded_tables_through_the_resync_and_loads_the_others(migration_types):
    """The trigger form's tables: a table loaded before is reloaded through the resync (its _base once
    more, at a new coordinate), and once the interval chain has started every table is; without
    incremental migration there is no chain to keep, so the full load loads them all."""
    from types import SimpleNamespace

    from airflow_provider_polar_mc.core import intervals
    from airflow_provider_polar_mc.core.full_load import TABLE_KIND, selection_key
    from airflow_provider_polar_mc.core.resync import reloads
    from airflow_provider_polar_mc.core.selection import select_tables
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_dict({"name": "m", "source": {"databases": ["shop"]}, "migration_types": migration_types})
    plans = [SimpleNamespace(selection=s) for s in select_tables(spec, {"shop": ["a", "b", "c"]})]
    store = _Store()
    store.put(TABLE_KIND, selection_key(plans[1].selection), {"status": "done", "upload_id": "u1"})
    load, resync = reloads(spec, store, plans)
    incremental = "incremental" in migration_types
    assert ([p.selection.source_name for p in load], resync) == (
        (["shop.a", "shop.c"], ["shop.b"]) if incremental else (["shop.a", "shop.b", "shop.c"], []))
    intervals.claim_first_interval(store, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    load, resync = reloads(spec, store, plans)
    assert ([p.selection.source_name for p in load], resync) == (
        ([], ["shop.a", "shop.b", "shop.c"]) if incremental else (["shop.a", "shop.b", "shop.c"], []))
