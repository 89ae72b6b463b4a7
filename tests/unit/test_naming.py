"""Object-name mapping, DTS's additional columns, and the naming findings the precheck reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_provider_polar_mc.core import naming


@pytest.mark.parametrize(
    ("policy", "spelled"),
    [("default", "orders_base"), ("destination", "orders_base"), ("lower", "orders_base"),
     ("upper", "ORDERS_BASE"), ("source", "Orders_Base")],
)
def test_capitalization_changes_spelling_only(policy: str, spelled: str):
    assert naming.spell("Orders_Base", policy) == spelled
    assert naming.stored_name(naming.spell("Orders_Base", policy)) == "orders_base"


def test_unknown_capitalization():
    with pytest.raises(ValueError, match="capitalization"):
        naming.spell("a", "camel")  # type: ignore[arg-type]


def test_destination_table_name_target_wins_over_batch_rename():
    assert naming.destination_table_name("Orders", prefix="ods_", suffix="_v1") == "ods_orders_v1"
    assert naming.destination_table_name("Orders", target="Sales", prefix="ods_") == "sales"
    assert naming.destination_table_name("orders") == "orders"


def test_derived_table_names():
    assert naming.base_table_name("Orders") == "orders_base"
    assert naming.log_table_name("Orders") == "orders_log"
    assert naming.replica_table_name("orders") == "orders"
    assert naming.replica_table_name("orders", "{database}_{table}_r", "Shop") == "shop_orders_r"


def test_destination_column_name_map_is_case_insensitive():
    column_map = {"CustID": "Customer_Id"}
    assert naming.destination_column_name("custid", column_map) == "customer_id"
    assert naming.destination_column_name("Name", column_map) == "name"
    assert naming.destination_column_name("Name") == "name"


@pytest.mark.parametrize(
    ("rule", "names"),
    [
        ("previous", ["record_id", "operation_flag", "utc_timestamp", "before_flag", "after_flag"]),
        ("new", ["new_dts_sync_record_id", "new_dts_sync_operation_flag", "new_dts_sync_utc_timestamp",
                 "new_dts_sync_before_flag", "new_dts_sync_after_flag"]),
    ],
)
def test_additional_columns_under_both_rules(rule: str, names: list[str]):
    columns = naming.additional_columns(rule)  # type: ignore[arg-type]
    assert [column.name for column in columns] == names
    # The role is always the previous-rule name, so code can find a column whatever the rule.
    assert [column.role for column in columns] == [name.removeprefix(naming.NEW_RULE_PREFIX) for name in names]
    assert {column.role: column.mc_type for column in columns}["record_id"] == "BIGINT"


@pytest.mark.parametrize(
    ("rule", "levels", "expected"),
    [
        ("previous", ["year"], ("modifytime_year",)),
        ("previous", ["year", "month", "day"], ("modifytime_year", "modifytime_month", "modifytime_day")),
        ("previous", list(naming.PARTITION_LEVELS),
         ("modifytime_year", "modifytime_month", "modifytime_day", "modifytime_hour", "modifytime_minute")),
        ("new", ["year", "month"], ("new_dts_sync_modifytime_year", "new_dts_sync_modifytime_month")),
    ],
)
def test_partition_columns(rule: str, levels: list[str], expected: tuple[str, ...]):
    assert naming.partition_columns(rule, levels) == expected  # type: ignore[arg-type]


def test_partition_columns_reject_unknown_level():
    with pytest.raises(ValueError, match="week"):
        naming.partition_columns("previous", ["year", "week"])


def test_unknown_additional_column_rule():
    with pytest.raises(ValueError, match="additional_column_rule"):
        naming.additional_columns("newest")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("orders", None),
        ("Orders_2024", None),
        ("a" * 128, None),
        ("", "is empty"),
        ("a" * 129, "longer than 128"),
        ("2024_orders", "start with a letter"),
        ("_orders", "start with a letter"),
        ("order-items", "letters, digits and underscores"),
        ("order items", "letters, digits and underscores"),
        ("订单", "start with a letter"),
        ("orders$", "letters, digits and underscores"),
    ],
)
def test_name_problem(name: str, problem: str | None):
    found = naming.name_problem(name)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_reserved_word_is_a_warning_not_an_error():
    (finding,) = naming.check_name("Select", "shop.select", kind="table", fix="rename")
    assert (finding.code, finding.severity) == ("reserved_word", "warning")
    assert naming.check_name("selection", "shop.selection", kind="table", fix="rename") == []


def test_invalid_name_finding():
    (finding,) = naming.check_name("order-items", "shop.order-items", kind="table", fix="give it a target")
    assert (finding.code, finding.severity, finding.objects) == ("invalid_name", "error", ("shop.order-items",))
    assert finding.fix == "give it a target"


@dataclass(frozen=True)
class Table:
    source_name: str
    destination_names: tuple[str, ...]


def test_two_source_tables_mapping_to_one_destination_name():
    findings = naming.find_table_findings([
        Table("shop.orders", ("orders_base", "orders_log")),
        Table("crm.Orders", ("Orders_base", "Orders_log")),
        Table("crm.items", ("items_base", "items_log")),
    ])
    collisions = [f for f in findings if f.code == "table_name_collision"]
    assert {(f.name, f.objects) for f in collisions} == {
        ("orders_base", ("shop.orders", "crm.Orders")),
        ("orders_log", ("shop.orders", "crm.Orders")),
    }
    assert all(f.severity == "error" and "target" in f.fix for f in collisions)


def test_replica_landing_on_another_tables_base():
    findings = naming.find_table_findings([
        Table("shop.a", ("a_base", "a_log", "a")),
        Table("shop.a_base", ("a_base_base", "a_base_log", "a_base")),
    ])
    assert [(f.code, f.name) for f in findings] == [("table_name_collision", "a_base")]


def test_one_table_never_collides_with_itself():
    assert naming.find_table_findings([Table("shop.t", ("t_base", "t_base"))]) == []


def test_invalid_destination_table_name_after_mapping():
    findings = naming.find_table_findings([Table("shop.order-items", ("order-items_base",))])
    assert [(f.code, f.objects) for f in findings] == [("invalid_name", ("shop.order-items",))]


def test_column_collisions_after_rename_and_case_folding():
    findings = naming.find_column_findings(
        "shop.orders", ["id", "ID2", "Amount", "amount_cents"], {"amount_cents": "AMOUNT", "ID2": "id"}
    )
    collisions = sorted((f.name, f.objects) for f in findings if f.code == "column_name_collision")
    assert collisions == [
        ("amount", ("shop.orders.Amount", "shop.orders.amount_cents")),
        ("id", ("shop.orders.id", "shop.orders.ID2")),
    ]


def test_additional_column_collision_suggests_the_new_rule():
    findings = naming.find_column_findings("shop.orders", ["id", "Record_Id", "modifytime_day"])
    by_name = {f.name: f for f in findings if f.code == "additional_column_collision"}
    assert set(by_name) == {"record_id", "modifytime_day"}
    assert "additional_column_rule: new" in by_name["record_id"].fix
    assert by_name["record_id"].objects == ("shop.orders.Record_Id",)


def test_partition_collision_only_for_levels_in_use():
    findings = naming.find_column_findings("shop.orders", ["modifytime_hour"], partition_levels=["year"])
    assert findings == []
    findings = naming.find_column_findings("shop.orders", ["modifytime_hour"], partition_levels=["year", "month",
                                                                                                 "day", "hour"])
    assert [f.code for f in findings] == ["additional_column_collision"]


def test_new_rule_avoids_the_collision_and_its_own_collision_suggests_a_rename():
    assert naming.find_column_findings("shop.orders", ["record_id"], rule="new") == []
    (finding,) = naming.find_column_findings("shop.orders", ["new_dts_sync_record_id"], rule="new")
    assert finding.code == "additional_column_collision"
    assert "columns" in finding.fix


def test_renaming_a_column_resolves_the_collision():
    assert naming.find_column_findings("shop.orders", ["record_id"], {"record_id": "legacy_record_id"}) == []


def test_invalid_and_reserved_column_names():
    findings = naming.find_column_findings("shop.orders", ["unit price", "order", "ok"])
    assert sorted((f.code, f.name) for f in findings) == [("invalid_name", "unit price"), ("reserved_word", "order")]


def test_a_ds_column_collides_with_the_snapshot_partition_only_with_snapshots():
    assert naming.find_column_findings("shop.orders", ["id", "DS"]) == []
    (finding,) = naming.find_column_findings("shop.orders", ["id", "DS"], snapshot_partition="ds")
    assert (finding.code, finding.severity, finding.objects) == ("snapshot_partition_collision", "error", ("shop.orders.DS",))
    assert "merge.snapshots: none" in finding.fix
    assert naming.find_column_findings("shop.orders", ["id", "DS"], {"DS": "day_string"}, snapshot_partition="ds") == []
