"""The DTS merge rule, run as MaxCompute SQL in the emulator."""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.model import DestColumn, TableDDL
from airflow_provider_polar_mc.core.replica.merge import MergeTarget, build_replica, up_to_partition_predicate

pytestmark = pytest.mark.integration


def test_partition_predicate_is_lexicographic():
    sql = up_to_partition_predicate(["y", "m"], ["2026", "02"])
    assert sql == "((`y` < '2026') OR (`y` = '2026' AND `m` <= '02'))"


def test_replica_applies_inserts_updates_key_changes_and_deletes(emulator):
    dest = MaxComputeDestination(emulator.client())
    p = f"mg{uuid.uuid4().hex[:6]}"
    data = (DestColumn("id", "bigint"), DestColumn("v", "string"))
    extra = tuple(DestColumn(n, t) for n, t in [("record_id", "bigint"), ("operation_flag", "string"), ("utc_timestamp", "bigint"), ("before_flag", "string"), ("after_flag", "string")])
    parts = (DestColumn("modifytime_year", "string"), DestColumn("modifytime_month", "string"))
    dest.create_table(TableDDL(f"{p}_base", data))
    dest.create_table(TableDDL(f"{p}_log", extra + data, parts))
    o = emulator.client()
    with o.get_table(f"{p}_base").open_writer() as w:
        w.write([[1, "a"], [2, "b"], [3, "c"], [4, "d"]])
    log_rows = {
        ("2026", "01"): [
            [10, "U", 0, "Y", "N", 1, "a"], [10, "U", 0, "N", "Y", 1, "a1"],  # update 1
            [11, "D", 0, "Y", "N", 2, "b"],  # delete 2
            [12, "I", 0, "N", "Y", 5, "e"],  # insert 5
            [13, "U", 0, "Y", "N", 3, "c"], [13, "U", 0, "N", "Y", 30, "c"],  # key change 3 -> 30
        ],
        ("2026", "02"): [
            [20, "U", 0, "Y", "N", 1, "a1"], [20, "U", 0, "N", "Y", 1, "a2"],
            [21, "I", 0, "N", "Y", 2, "b-again"],  # re-insert deleted key
            [22, "D", 0, "Y", "N", 5, "e"],
        ],
    }
    for (y, m), rows in log_rows.items():
        with o.get_table(f"{p}_log").open_writer(partition=f"modifytime_year='{y}',modifytime_month='{m}'", create_partition=True) as w:
            w.write(rows)
    target = MergeTarget(f"{p}_base", f"{p}_log", p, ("id",), "record_id", "after_flag", ("modifytime_year", "modifytime_month"))

    def replica() -> dict:
        return dict(dest.query(f"SELECT id, v FROM {p}"))

    build_replica(dest, target, ["2026", "01"], "replica")
    assert replica() == {1: "a1", 4: "d", 5: "e", 30: "c"}
    build_replica(dest, target, ["2026", "02"], "replica")
    assert replica() == {1: "a2", 2: "b-again", 4: "d", 30: "c"}
    build_replica(dest, target, ["2025", "12"], "replica")  # before any change: the base
    assert replica() == {1: "a", 2: "b", 3: "c", 4: "d"}
