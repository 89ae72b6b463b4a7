"""The resync's pure decisions: which MaxCompute column takes a narrowed type, and what the merge of an
interval uses for a table with a resync record (core/resync.py)."""

from __future__ import annotations

import pytest

from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.resync import holds, merge_base

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
