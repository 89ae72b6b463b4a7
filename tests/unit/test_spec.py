"""The migration spec: every malformed document names the field at fault; valid ones round-trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_polar_mc.core.selection import missing_objects, select_tables, why_nothing_selected
from airflow_provider_polar_mc.exceptions import ConfigError, SpecError, SpecProblem
from airflow_provider_polar_mc.spec import (
    MigrationSpec,
    TableSelection,
    filter_problem,
    replica_pattern_problem,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "migrations" / "example_shop.yaml"
DELETE = object()


def minimal() -> dict[str, Any]:
    return {"name": "shop_to_mc", "source": {"databases": ["shop"]}}


def with_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """``minimal()`` with dotted-path changes applied (``DELETE`` removes a key)."""
    document = minimal()
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return document


def problems_of(document: Any) -> list[SpecProblem]:
    with pytest.raises(SpecError) as raised:
        MigrationSpec.from_dict(document)
    return raised.value.problems


def table_objects(*tables: Any) -> list[dict[str, Any]]:
    return [{"database": "shop", "tables": list(tables)}]


# (id, changes, expected path, words expected in the message)
MALFORMED = [
    ("name_missing", {"name": DELETE}, "name", "required"),
    ("name_uppercase", {"name": "Shop"}, "name", "a-z"),
    ("name_with_dash", {"name": "shop-mc"}, "name", "a-z"),
    ("name_not_string", {"name": 42}, "name", "non-empty string"),
    ("source_missing", {"source": DELETE}, "source", "required"),
    ("source_not_mapping", {"source": "shop"}, "source", "mapping"),
    ("databases_empty", {"source.databases": []}, "source.databases", "at least one"),
    ("databases_not_list", {"source.databases": "shop"}, "source.databases", "must be a list"),
    ("database_duplicate", {"source.databases": ["shop", "shop"]}, "source.databases[1]", "twice"),
    ("database_not_string", {"source.databases": ["shop", 7]}, "source.databases[1]", "non-empty string"),
    ("source_unknown_key", {"source.conn": "x"}, "source.conn", "did you mean 'conn_id'"),
    ("top_unknown_key", {"migration_type": ["full"]}, "migration_type", "did you mean 'migration_types'"),
    ("top_unknown_key_no_match", {"zzz": 1}, "zzz", "allowed"),
    ("destination_unknown_key", {"destination.projct": "p"}, "destination.projct", "did you mean 'project'"),
    ("destination_project_empty", {"destination.project": ""}, "destination.project", "non-empty"),
    ("migration_types_empty", {"migration_types": []}, "migration_types", "at least one"),
    ("migration_type_unknown", {"migration_types": ["schema", "fulll"]}, "migration_types[1]", "did you mean 'full'"),
    ("migration_type_twice", {"migration_types": ["full", "full"]}, "migration_types[1]", "twice"),
    ("objects_not_list", {"objects": {"database": "shop"}}, "objects", "must be a list"),
    ("objects_empty", {"objects": []}, "objects", "at least one"),
    ("object_not_mapping", {"objects": ["shop"]}, "objects[0]", "mapping"),
    ("object_database_unknown", {"objects": [{"database": "shopp", "tables": "all"}]},
     "objects[0].database", "did you mean 'shop'"),
    ("object_tables_missing", {"objects": [{"database": "shop"}]}, "objects[0].tables", "required"),
    ("object_tables_wrong_word", {"objects": [{"database": "shop", "tables": "every"}]},
     "objects[0].tables", "`all` or a list"),
    ("object_duplicate_database", {"objects": [{"database": "shop", "tables": "all"},
                                               {"database": "shop", "tables": ["a"]}]},
     "objects[1].database", "already listed"),
    ("include_without_all", {"objects": [{"database": "shop", "tables": ["a"], "include": ["a*"]}]},
     "objects[0].include", "only allowed with `tables: all`"),
    ("include_unclosed_bracket", {"objects": [{"database": "shop", "tables": "all", "include": ["ord[ab"]}]},
     "objects[0].include[0]", "unclosed '['"),
    ("exclude_not_list", {"objects": [{"database": "shop", "tables": "all", "exclude": "tmp_*"}]},
     "objects[0].exclude", "must be a list"),
    ("exclude_blank_pattern", {"objects": [{"database": "shop", "tables": "all", "exclude": [" "]}]},
     "objects[0].exclude[0]", "non-empty string"),
    ("table_duplicate", {"objects": table_objects("orders", {"name": "orders"})},
     "objects[0].tables[1]", "already listed"),
    ("table_not_string_or_mapping", {"objects": table_objects(["orders"])}, "objects[0].tables[0]", "table name"),
    ("table_unknown_key", {"objects": table_objects({"name": "orders", "fliter": "a = 1"})},
     "objects[0].tables[0].fliter", "did you mean 'filter'"),
    ("table_name_too_long", {"objects": table_objects("x" * 65)}, "objects[0].tables[0].name", "64"),
    ("target_invalid", {"objects": table_objects({"name": "orders", "target": "9orders"})},
     "objects[0].tables[0].target", "start with a letter"),
    ("target_too_long", {"objects": table_objects({"name": "orders", "target": "t" * 124})},
     "objects[0].tables[0].target", "_base"),
    ("filter_semicolon", {"objects": table_objects({"name": "orders", "filter": "id > 1; DROP TABLE x"})},
     "objects[0].tables[0].filter", "';'"),
    ("filter_empty", {"objects": table_objects({"name": "orders", "filter": "  "})},
     "objects[0].tables[0].filter", "non-empty"),
    ("filter_unbalanced_paren", {"objects": table_objects({"name": "orders", "filter": "(a = 1 OR b = 2"})},
     "objects[0].tables[0].filter", "unclosed '('"),
    ("filter_unbalanced_quote", {"objects": table_objects({"name": "orders", "filter": "name = 'bob"})},
     "objects[0].tables[0].filter", "unterminated"),
    ("filter_comment", {"objects": table_objects({"name": "orders", "filter": "a = 1 -- tail"})},
     "objects[0].tables[0].filter", "comments"),
    ("filter_not_string", {"objects": table_objects({"name": "orders", "filter": 5})},
     "objects[0].tables[0].filter", "string"),
    ("columns_not_mapping", {"objects": table_objects({"name": "orders", "columns": ["a"]})},
     "objects[0].tables[0].columns", "must map"),
    ("column_target_invalid", {"objects": table_objects({"name": "orders", "columns": {"id": "order id"}})},
     "objects[0].tables[0].columns.id", "letters, digits and underscores"),
    ("column_targets_collide", {"objects": table_objects({"name": "orders", "columns": {"a": "x", "b": "X"}})},
     "objects[0].tables[0].columns.b", "already the target"),
    ("batch_prefix_digit", {"batch_rename.prefix": "1_"}, "batch_rename.prefix", "start with a letter"),
    ("batch_suffix_dash", {"batch_rename.suffix": "-x"}, "batch_rename.suffix", "letters, digits"),
    ("batch_rename_unknown", {"batch_rename.prefx": "a"}, "batch_rename.prefx", "did you mean 'prefix'"),
    ("additional_rule_unknown", {"additional_column_rule": "newer"}, "additional_column_rule", "previous, new"),
    ("partition_not_prefix", {"partition": ["year", "day"]}, "partition", "prefix"),
    ("partition_empty", {"partition": []}, "partition", "non-empty"),
    ("partition_unknown_level", {"partition": ["year", "week"]}, "partition", "prefix"),
    ("conflict_mode_unknown", {"conflict_mode": "ignore"}, "conflict_mode", "ignore_and_proceed"),
    ("capitalization_unknown", {"capitalization": "camel"}, "capitalization", "upper"),
    ("throttle_rows_negative", {"throttle.full.rows_per_s": -5}, "throttle.full.rows_per_s", "positive integer"),
    ("throttle_rows_float", {"throttle.full.rows_per_s": 1.5}, "throttle.full.rows_per_s", "positive integer"),
    ("throttle_qps_zero", {"throttle.full.source_qps": 0}, "throttle.full.source_qps", "positive integer"),
    ("throttle_mb_string", {"throttle.incremental.mb_per_s": "10MB"}, "throttle.incremental.mb_per_s",
     "positive number"),
    ("throttle_mb_bool", {"throttle.full.mb_per_s": True}, "throttle.full.mb_per_s", "positive number"),
    ("throttle_incremental_qps", {"throttle.incremental.source_qps": 5}, "throttle.incremental.source_qps",
     "unknown option"),
    ("retry_connection_low", {"retry.connection_minutes": 5}, "retry.connection_minutes", "from 10 to 1440"),
    ("retry_other_high", {"retry.other_minutes": 2000}, "retry.other_minutes", "from 1 to 1440"),
    ("retry_other_not_less", {"retry.connection_minutes": 30, "retry.other_minutes": 30}, "retry.other_minutes",
     "less than retry.connection_minutes"),
    ("heartbeat_enabled_string", {"heartbeat.enabled": "yes please"}, "heartbeat.enabled", "true or false"),
    ("heartbeat_table_invalid", {"heartbeat.table": "hb table"}, "heartbeat.table", "letters, digits"),
    ("heartbeat_interval_zero", {"heartbeat.interval_seconds": 0}, "heartbeat.interval_seconds", "from 1"),
    ("heartbeat_without_incremental", {"heartbeat.enabled": True, "migration_types": ["schema", "full"]},
     "heartbeat.enabled", "incremental"),
    ("latency_alert_negative", {"latency_alert_seconds": -1}, "latency_alert_seconds", "positive integer"),
    ("environment_tag_number", {"environment_tag": 3}, "environment_tag", "string"),
    ("environment_tag_too_long", {"environment_tag": "x" * 101}, "environment_tag", "at most 100"),
    ("environment_tag_space", {"environment_tag": "prod env"}, "environment_tag", "letters, digits"),
    ("throttle_mb_tiny", {"throttle.full.mb_per_s": 1.0e-300}, "throttle.full.mb_per_s", "from 0.1 to 10,000"),
    ("throttle_qps_too_high", {"throttle.full.source_qps": 10**6}, "throttle.full.source_qps", "to 100,000"),
    ("latency_alert_too_high", {"latency_alert_seconds": 10**7}, "latency_alert_seconds", "to 604,800"),
    ("json_type_unknown", {"json_type": "jsonb"}, "json_type", "did you mean 'json'"),
    ("datetime_type_unknown", {"datetime_type": "timestamp"}, "datetime_type", "timestamp_ntz"),
    ("chunk_rows_zero", {"full_load.chunk_rows": 0}, "full_load.chunk_rows", "from 1"),
    ("parallelism_too_high", {"full_load.parallelism": 1000}, "full_load.parallelism", "from 1 to 64"),
    ("merge_enabled_number", {"merge.enabled": 1}, "merge.enabled", "true or false"),
    ("replica_without_table", {"merge.replica_name": "replica"}, "merge.replica_name", "{table}"),
    ("replica_unknown_placeholder", {"merge.replica_name": "{tbl}_r"}, "merge.replica_name", "unknown placeholder"),
    ("replica_like_base", {"merge.replica_name": "{table}_base"}, "merge.replica_name", "_base/_log"),
    ("replica_bad_braces", {"merge.replica_name": "{table"}, "merge.replica_name", "not a valid pattern"),
    ("accepted_warnings_not_list", {"accepted_warnings": "binlog"}, "accepted_warnings", "must be a list"),
    ("accepted_warning_bad_id", {"accepted_warnings": ["binlog retention"]}, "accepted_warnings[0]",
     "precheck id"),
]


@pytest.mark.parametrize(("changes", "path", "words"), [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_malformed_spec_names_the_field(changes: dict[str, Any], path: str, words: str):
    problems = problems_of(with_changes(changes))
    messages = {problem.path: problem.message for problem in problems}
    assert path in messages, f"expected a problem at {path!r}, got {problems}"
    assert words in messages[path], messages[path]


def test_malformed_cases_are_distinct_and_many():
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED) >= 30


def test_every_problem_is_reported_at_once():
    document = with_changes({
        "name": "Bad Name",
        "throttle.full.rows_per_s": 0,
        "retry.other_minutes": 0,
        "objects": table_objects({"name": "a", "filter": "x;"}, {"name": "b", "target": "_b"}),
        "partition": ["day"],
    })
    paths = [problem.path for problem in problems_of(document)]
    assert paths == [
        "name",
        "objects[0].tables[0].filter",
        "objects[0].tables[1].target",
        "retry.other_minutes",
        "partition",
        "throttle.full.rows_per_s",
    ]


def test_spec_error_lists_each_problem_on_its_own_line():
    with pytest.raises(SpecError) as raised:
        MigrationSpec.from_dict(with_changes({"name": "X", "json_type": "xml"}), source="x.yaml")
    lines = str(raised.value).splitlines()
    assert lines[0] == "invalid migration spec in x.yaml (2 problems):"
    assert lines[1].strip().startswith("name: ")
    assert lines[2].strip().startswith("json_type: must be one of string, json")


def test_spec_error_is_a_config_error_and_a_value_error():
    with pytest.raises(ConfigError):
        MigrationSpec.from_dict({"name": "x"})
    with pytest.raises(ValueError):
        MigrationSpec.from_dict({"name": "x"})


@pytest.mark.parametrize("document", [None, [], "name: x", 3])
def test_document_that_is_not_a_mapping(document: Any):
    problems = problems_of(document)
    assert [problem.path for problem in problems] == [""]
    assert "mapping" in problems[0].message


def test_defaults():
    spec = MigrationSpec.from_dict(minimal())
    assert spec.source.conn_id == "polardb_default"
    assert spec.destination.conn_id == "maxcompute_default"
    assert spec.destination.project is None
    assert spec.migration_types == ("schema", "full", "incremental")
    assert [(o.database, o.all_tables) for o in spec.objects] == [("shop", True)]
    assert (spec.batch_rename.prefix, spec.batch_rename.suffix) == ("", "")
    assert spec.additional_column_rule == "previous"
    assert spec.partition == ("year", "month", "day")
    assert spec.conflict_mode == "precheck_and_report"
    assert spec.capitalization == "default"
    assert spec.throttle.full.rows_per_s is None and spec.throttle.incremental.mb_per_s is None
    assert (spec.retry.connection_minutes, spec.retry.other_minutes) == (720, 10)
    assert not spec.heartbeat.enabled and spec.heartbeat.table == "polar_mc_heartbeat"
    assert spec.heartbeat_database == "shop"
    assert spec.latency_alert_seconds is None and spec.environment_tag is None
    assert (spec.json_type, spec.datetime_type) == ("string", "timestamp_ntz")
    assert (spec.full_load.chunk_rows, spec.full_load.parallelism) == (50_000, 2)
    assert spec.merge.enabled and spec.merge.replica_name == "{table}"
    assert spec.accepted_warnings == ()
    assert spec.partition_columns() == ("modifytime_year", "modifytime_month", "modifytime_day")


def test_example_spec_loads_and_round_trips():
    spec = MigrationSpec.from_yaml(EXAMPLE)
    assert spec.name == "example_shop"
    assert spec.partition == ("year", "month", "day", "hour")
    assert spec.heartbeat.enabled and spec.heartbeat.interval_seconds == 30
    assert spec.throttle.incremental.mb_per_s == 20.5
    crm = spec.objects[1]
    assert crm.tables[0].columns == {"cust_id": "customer_id", "record_id": "legacy_record_id"}
    assert crm.tables[2].name == "tickets" and crm.tables[2].target is None
    assert MigrationSpec.from_dict(spec.to_dict()) == spec
    # The plain document survives YAML too (what the CLI's `plan` prints).
    assert MigrationSpec.from_yaml(yaml.safe_dump(spec.to_dict())) == spec


def test_from_yaml_accepts_path_string_and_text():
    assert MigrationSpec.from_yaml(str(EXAMPLE)) == MigrationSpec.from_yaml(EXAMPLE.read_text())


def test_from_yaml_reports_syntax_error_with_line():
    with pytest.raises(SpecError) as raised:
        MigrationSpec.from_yaml("name: x\nsource: [unclosed\n")
    assert "not valid YAML" in str(raised.value) and "line" in str(raised.value)


def test_from_yaml_missing_file():
    with pytest.raises(SpecError, match="does not exist"):
        MigrationSpec.from_yaml("/nonexistent/spec.yaml")


def test_migration_types_are_canonically_ordered():
    spec = MigrationSpec.from_dict(with_changes({"migration_types": ["incremental", "schema"]}))
    assert spec.migration_types == ("schema", "incremental")
    assert spec == MigrationSpec.from_dict(with_changes({"migration_types": ["schema", "incremental"]}))


@pytest.mark.parametrize(
    ("types", "must_exist", "start", "merge"),
    [
        (["schema"], False, None, False),
        (["full"], True, None, False),
        (["schema", "full"], False, None, False),
        (["schema", "full", "incremental"], False, "full_load_snapshot", True),
        (["full", "incremental"], True, "full_load_snapshot", True),
        (["schema", "incremental"], False, "first_run", True),
        (["incremental"], True, "first_run", True),
    ],
)
def test_every_migration_type_combination(types: list[str], must_exist: bool, start: str | None, merge: bool):
    spec = MigrationSpec.from_dict(with_changes({"migration_types": types}))
    assert spec.destination_tables_must_exist is must_exist
    assert spec.incremental_start == start
    assert spec.merge_active is merge


def test_existing_tables_required_without_schema_migration():
    spec = MigrationSpec.from_dict(with_changes({"migration_types": ["full", "incremental"]}))
    (selection,) = select_tables(spec, {"shop": ["orders"]})
    assert spec.existing_tables_required(selection) == ("orders_base", "orders_log")
    with_schema = MigrationSpec.from_dict(minimal())
    assert with_schema.existing_tables_required(selection) == ()


# --- selecting tables ------------------------------------------------------------------------------


def test_select_all_tables_with_include_exclude_and_batch_rename():
    spec = MigrationSpec.from_dict(with_changes({
        "objects": [{"database": "shop", "tables": "all", "include": ["order*", "Cust*"], "exclude": ["*_tmp"]}],
        "batch_rename": {"prefix": "ods_", "suffix": "_v1"},
    }))
    selections = select_tables(spec, {"shop": ["orders", "order_items", "orders_tmp", "customers", "logs"]})
    assert [s.source_table for s in selections] == ["orders", "order_items", "customers"]
    first = selections[0]
    assert first.destination_table == "ods_orders_v1"
    assert (first.base_table, first.log_table, first.replica_table) == (
        "ods_orders_v1_base", "ods_orders_v1_log", "ods_orders_v1")
    assert first.spec_path == "objects[0]"


def test_select_explicit_tables_with_target_filter_columns_and_capitalization():
    spec = MigrationSpec.from_dict(with_changes({
        "objects": table_objects({"name": "Orders", "target": "Sales_Orders", "filter": "id > 10",
                                  "columns": {"ID": "Order_ID"}}, "Items"),
        "batch_rename": {"prefix": "ods_"},
        "capitalization": "upper",
        "merge": {"replica_name": "{database}_{table}_replica"},
    }))
    orders, items = select_tables(spec, {"shop": ["Orders", "Items", "Other"]})
    assert orders.destination_table == "sales_orders"  # stored lower case; target skips batch rename
    assert orders.base_table == "sales_orders_base"
    assert orders.replica_table == "shop_sales_orders_replica"
    assert orders.filter == "id > 10"
    assert orders.destination_column("id") == "order_id"
    assert orders.destination_column("amount") == "amount"
    assert orders.spell(orders.base_table) == "SALES_ORDERS_BASE"
    assert items.destination_table == "ods_items"
    assert items.spec_path == "objects[0].tables[1]"
    assert orders.unknown_mapped_columns(["amount"]) == ["ID"]


def test_select_reports_every_missing_object():
    spec = MigrationSpec.from_dict(with_changes({
        "source.databases": ["shop", "crm"],
        "objects": [{"database": "shop", "tables": ["orders", "custmers"]}, {"database": "crm", "tables": "all"}],
    }))
    with pytest.raises(SpecError) as raised:
        select_tables(spec, {"shop": ["orders", "customers"]})
    assert [(p.path, p.message) for p in raised.value.problems] == [
        ("objects[0].tables[1]", "table shop.custmers not found in the source; did you mean 'customers'?"),
        ("objects[1].database", "database 'crm' not found in the source"),
    ]
    selected = select_tables(spec, {"shop": ["orders", "customers"]}, missing="ignore")
    assert [s.source_name for s in selected] == ["shop.orders"]


def test_missing_databases_are_found_among_the_servers_databases():
    spec = MigrationSpec.from_dict(with_changes({
        "source.databases": ["shpo", "crm", "mysql"],
        "objects": [{"database": "shpo", "tables": "all"}, {"database": "crm", "tables": ["tickets"]},
                    {"database": "mysql", "tables": ["user"]}],
    }))
    server = ["information_schema", "mysql", "performance_schema", "shop", "sys"]
    problems = missing_objects(spec, {"mysql": ["user"]}, databases=server)
    assert [(p.path, p.message) for p in problems] == [
        ("source.databases[0]", "database 'shpo' not found in the source; did you mean 'shop'?"),
        ("source.databases[1]", "database 'crm' not found in the source"),  # system databases are not suggested
    ]
    with pytest.raises(SpecError, match="does not match the source"):
        select_tables(spec, {"mysql": ["user"]}, databases=server)


def test_why_nothing_selected_names_the_entry_and_the_patterns():
    spec = MigrationSpec.from_dict(with_changes({
        "source.databases": ["shop", "crm", "empty"],
        "objects": [{"database": "shop", "tables": "all", "include": ["order*"]},
                    {"database": "crm", "tables": "all", "exclude": ["*"]},
                    {"database": "empty", "tables": "all"}],
    }))
    tables = {"shop": ["customers", "items"], "crm": ["tickets"], "empty": []}
    assert select_tables(spec, tables) == []
    assert [str(p) for p in why_nothing_selected(spec, tables)] == [
        "objects[0].include: none of the 2 tables of shop (customers, items) matches ['order*']",
        "objects[1].exclude: ['*'] excludes every table of crm that include selects (tickets)",
        "objects[2].database: database 'empty' has no tables (base tables; views are not migrated)",
    ]


def test_destination_names_follow_migration_types():
    full_only = MigrationSpec.from_dict(with_changes({"migration_types": ["schema", "full"]}))
    assert select_tables(full_only, {"shop": ["t"]})[0].destination_names == ("t_base",)
    everything = MigrationSpec.from_dict(minimal())
    assert select_tables(everything, {"shop": ["t"]})[0].destination_names == ("t_base", "t_log", "t", "t_snapshot")
    no_snapshots = MigrationSpec.from_dict(with_changes({"merge.snapshots": "none"}))
    assert select_tables(no_snapshots, {"shop": ["t"]})[0].destination_names == ("t_base", "t_log", "t")
    no_merge = MigrationSpec.from_dict(with_changes({"merge.enabled": False}))
    assert select_tables(no_merge, {"shop": ["t"]})[0].destination_names == ("t_base", "t_log")


def test_naming_findings_detect_collisions_between_databases():
    spec = MigrationSpec.from_dict(with_changes({"source.databases": ["shop", "crm"], "objects": DELETE}))
    selections = select_tables(spec, {"shop": ["orders"], "crm": ["Orders"]})
    codes = {(f.code, f.name) for f in spec.naming_findings(selections)}
    assert ("table_name_collision", "orders_base") in codes


def test_table_selection_round_trips_through_json_dict():
    import json

    spec = MigrationSpec.from_yaml(EXAMPLE)
    for selection in select_tables(spec, {"shop": ["orders"], "crm": ["customers", "orders", "tickets"]}):
        assert TableSelection.from_dict(json.loads(json.dumps(selection.to_dict()))) == selection


def test_spec_is_immutable():
    spec = MigrationSpec.from_dict(minimal())
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_from_dict_does_not_mutate_its_input():
    document = with_changes({"objects": table_objects({"name": "a", "columns": {"x": "y"}})})
    snapshot = copy.deepcopy(document)
    MigrationSpec.from_dict(document)
    assert document == snapshot


# --- filter and pattern helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "id > 100",
        "status = 'a;b' AND note <> \"--\"",
        "name = 'O''Brien'",
        r"name = 'it\'s'",
        "(a = 1 OR b = 2) AND `weird;col` IS NOT NULL",
        "created_at >= '2024-01-01' AND (x IN (1, 2))",
    ],
)
def test_acceptable_filters(expression: str):
    assert filter_problem(expression) is None


@pytest.mark.parametrize(
    ("expression", "words"),
    [("a = 1)", "without a matching"), ("a = 1 /* x */", "comments"), ("a = 1 # x", "comments"),
     ("`col = 1", "unterminated")],
)
def test_rejected_filters(expression: str, words: str):
    assert words in (filter_problem(expression) or "")


def test_replica_pattern_accepts_database_placeholder():
    assert replica_pattern_problem("{database}__{table}") is None


def test_the_heartbeat_table_is_never_selected():
    spec = MigrationSpec.from_dict(
        {"name": "hb", "source": {"databases": ["shop"]}, "heartbeat": {"enabled": True}}
    )
    names = [s.source_table for s in select_tables(spec, {"shop": ["orders", "polar_mc_heartbeat"]})]
    assert names == ["orders"]
