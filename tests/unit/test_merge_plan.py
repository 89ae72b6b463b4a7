"""Which merge steps an interval's merge runs (core/merging.py plan_merge), for every order of runs."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_polar_mc.core.merging import plan_merge, snapshot_as_of, snapshot_ds, snapshot_points
from airflow_provider_polar_mc.core.replica.merge import (
    BASE,
    REPLICA,
    LogRange,
    MergeTarget,
    merge_step_sql,
    snapshot,
)

UTC = dt.timezone.utc
HOURLY = ("year", "month", "day", "hour")


def at(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 1, tzinfo=UTC) + dt.timedelta(days=day - 1, hours=hour)


def shape(plan) -> list[tuple]:
    return [(s.start.kind, s.start.ds, s.start_at, s.into.kind, s.into.ds, s.through) for s in plan.steps]


def test_snapshot_points_and_names():
    assert snapshot_ds(at(30, 24), "day") == "20261130"  # the day that ends at 2026-12-01T00:00Z
    assert snapshot_ds(at(30, 13), "day") is None
    assert snapshot_ds(at(30, 13), "hour") == "2026113012"
    assert snapshot_as_of("20261130", "day") == at(30, 24)
    assert snapshot_as_of("2026113012", "hour") == at(30, 13)
    # another unit's partition, or one someone else wrote, is not a snapshot of this unit
    assert snapshot_as_of("20261130", "hour") is None and snapshot_as_of("2026113012", "day") is None
    assert snapshot_as_of("latest", "day") is None
    assert snapshot_points(at(29, 22), at(31, 1), "day") == [at(30), at(31)]
    assert snapshot_points(at(30), at(30, 2), "hour") == [at(30, 1), at(30, 2)]


def test_first_merge_starts_from_the_base():
    plan = plan_merge(at(30, 5), HOURLY, marker=None, unit="day")
    assert shape(plan) == [("base", "", None, "replica", "", at(30, 5))]
    assert plan.through == at(30, 5)


def test_next_interval_reads_the_replica_and_its_own_partition_only():
    plan = plan_merge(at(30, 6), HOURLY, marker=at(30, 5), unit="day", snapshots=["20261129"])
    assert shape(plan) == [("replica", "", at(30, 5), "replica", "", at(30, 6))]


def test_the_interval_ending_a_day_writes_that_days_snapshot_then_copies_it():
    plan = plan_merge(at(30, 24), HOURLY, marker=at(30, 23), unit="day")
    assert shape(plan) == [
        ("replica", "", at(30, 23), "snapshot", "20261130", at(30, 24)),
        ("snapshot", "20261130", at(30, 24), "replica", "", at(30, 24)),
    ]
    assert plan.steps[-1].copies


def test_a_gap_merged_at_once_passes_every_day_boundary_in_it():
    plan = plan_merge(at(30, 3), HOURLY, marker=at(28, 20), unit="day")
    assert [s.into.ds for s in plan.steps] == ["20261128", "20261129", ""]
    assert plan.steps[-1].start == snapshot("20261129") and plan.steps[-1].start_at == at(30)


def test_a_rerun_of_an_older_interval_rebuilds_forward_from_the_nearest_earlier_snapshot():
    held = ["20261127", "20261128", "20261129"]
    plan = plan_merge(at(29, 10), HOURLY, marker=at(30, 6), unit="day", snapshots=held)
    assert plan.through == at(30, 6)  # never back in time
    assert shape(plan) == [
        ("snapshot", "20261128", at(29), "snapshot", "20261129", at(30)),  # its own day's snapshot, refreshed
        ("snapshot", "20261129", at(30), "replica", "", at(30, 6)),
    ]


def test_a_rerun_of_a_snapshot_interval_refreshes_its_snapshot_and_every_later_one():
    held = ["20261127", "20261128", "20261129"]
    plan = plan_merge(at(28, 24), HOURLY, marker=at(30, 6), unit="day", snapshots=held)
    assert [(s.start.ds, s.into.ds) for s in plan.steps] == [("20261127", "20261128"), ("20261128", "20261129"),
                                                            ("20261129", "")]


def test_a_rerun_of_the_newest_interval_starts_before_it():
    plan = plan_merge(at(30, 6), HOURLY, marker=at(30, 6), unit="day", snapshots=["20261129"])
    assert shape(plan) == [("snapshot", "20261129", at(30), "replica", "", at(30, 6))]


def test_a_rerun_without_snapshots_rebuilds_from_the_base_up_to_the_marker():
    plan = plan_merge(at(29, 10), HOURLY, marker=at(30, 6))
    assert shape(plan) == [("base", "", None, "replica", "", at(30, 6))]


def test_full_mode_rebuilds_from_the_base_and_keeps_the_newest_interval():
    plan = plan_merge(at(29, 10), HOURLY, marker=at(30, 6), full=True, unit="day", snapshots=["20261129"])
    assert shape(plan) == [
        ("base", "", None, "snapshot", "20261129", at(30)),
        ("snapshot", "20261129", at(30), "replica", "", at(30, 6)),
    ]


@pytest.mark.parametrize("unit", ["day", "hour"])
def test_every_plan_reads_each_interval_once_and_ends_at_the_newest(unit):
    """Whatever the marker and the snapshots, the steps chain (each starts where the previous ended) and
    the replica ends at max(interval, marker)."""
    held = [snapshot_ds(at(d), "day") for d in (26, 27, 29)] + [snapshot_ds(at(29, h), "hour") for h in (3, 9)]
    for end in [at(27, 5), at(28), at(29, 9), at(30, 1)]:
        for marker in [None, at(26, 4), at(29, 9), at(30, 2)]:
            plan = plan_merge(end, HOURLY, marker=marker, unit=unit, snapshots=held)
            assert plan.through == max(end, marker or end)
            for before, after in zip(plan.steps, plan.steps[1:], strict=False):
                assert after.start == before.into and after.start_at == before.through
            assert plan.steps[-1].into == REPLICA
            assert all(s.start_at is None or s.start_at <= s.through for s in plan.steps)


def test_step_sql_reads_the_start_state_and_only_the_partition_range():
    target = MergeTarget("t_base", "t_log", "t", ("id",), "record_id", "after_flag", ("y", "m"), "t_snapshot")
    sql = merge_step_sql(target, ["id", "v"], snapshot("20261129"), LogRange(("2026", "03"), ("2026", "05")), REPLICA)
    assert sql.startswith("INSERT OVERWRITE TABLE `t` (`id`, `v`)\n")  # columns by name: a snapshot table may have more
    assert "FROM `t_snapshot` WHERE `ds` = '20261129'" in sql
    assert "((`y` > '2026') OR (`y` = '2026' AND `m` >= '03')) AND ((`y` < '2026') OR (`y` = '2026' AND `m` <= '05'))" in sql
    copy = merge_step_sql(target, ["id", "v"], REPLICA, None, snapshot("20261130"))
    assert copy == "INSERT OVERWRITE TABLE `t_snapshot` PARTITION (ds='20261130') (`id`, `v`)\nSELECT `id`, `v` FROM `t`;"
    with pytest.raises(ValueError):
        merge_step_sql(target, ["id"], REPLICA, None, BASE)


def test_snapshot_points_are_interval_ends_only():
    """Daily snapshots with monthly partitions: only the month's last day has a state to show."""
    monthly = ("year", "month")
    december = dt.datetime(2026, 12, 1, tzinfo=UTC)
    plan = plan_merge(december, monthly, marker=at(1), unit="day")
    assert [(s.into.kind, s.into.ds) for s in plan.steps] == [("snapshot", "20261130"), ("replica", "")]
    hourly_snapshots = plan_merge(december, ("year", "month", "day"), marker=at(30), unit="hour")
    assert [s.into.ds for s in hourly_snapshots.steps] == ["2026113023", ""]


def test_fills_give_older_rows_the_ddls_value_and_leave_newer_ones():
    from airflow_provider_polar_mc.core.replica.merge import MergeFill

    target = MergeTarget("t_base", "t_log", "t", ("id",), "record_id", "after_flag", ("y",), "t_snapshot")
    fill = MergeFill("flag", 4294967396, "CAST('7' AS INT)")
    sql = merge_step_sql(target, ["id", "flag"], REPLICA, LogRange(("2026",), ("2026",)), REPLICA, [fill])
    assert "SELECT `id`, CAST('7' AS INT) AS `flag`, CAST(0 AS BIGINT) AS `record_id`" in sql  # the older state
    assert ("SELECT `id`, CASE WHEN `record_id` < 4294967396 THEN CAST('7' AS INT) ELSE `flag` END AS `flag`, "
            "`record_id`, `after_flag` FROM `t_log`") in sql
    copy = merge_step_sql(target, ["id", "flag"], REPLICA, None, snapshot("20261130"))
    assert "CAST('7' AS INT)" not in copy  # no fill in range: the columns as they are
