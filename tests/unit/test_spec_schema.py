"""``polar-mc spec-schema``: the JSON Schema editors validate spec files with. It must accept every
document the loader accepts (the example, the demo's, the integration tests', every bound of every
number, the round-tripped ``to_dict()``) and refuse what it can see is wrong (unknown keys, unknown
choices, numbers out of range, names breaking their pattern), the way the loader does."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import json
import types
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from airflow_provider_polar_mc.cli import main
from airflow_provider_polar_mc.exceptions import SpecError
from airflow_provider_polar_mc.spec import RANGES, MigrationSpec

REPO = Path(__file__).resolve().parents[2]
DAG_SPECS = sorted((REPO / "dags").rglob("*.yaml")) + sorted((REPO / "dags").rglob("*.yml"))
MINIMAL: dict[str, Any] = {"name": "shop_mc", "source": {"databases": ["shop"]}}


@pytest.fixture(scope="module")
def validator():
    """A validator of the schema exactly as the command prints it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["spec-schema"]) == 0
    schema = json.loads(out.getvalue())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def as_json(document: Any) -> Any:
    """What an editor's YAML language server sees: YAML 1.2 has no date type, so dates are strings."""
    return json.loads(json.dumps(document, default=lambda value: value.isoformat()))


def schema_errors(validator, document: Any) -> list[str]:
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(as_json(document))]


def test_the_command_prints_a_draft_2020_12_schema(capsys):
    assert main(["spec-schema"]) == 0
    captured = capsys.readouterr()
    schema = json.loads(captured.out)
    assert captured.err == ""
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["name", "source"] and schema["additionalProperties"] is False


def test_the_schema_carries_descriptions_defaults_and_bounds(validator):
    schema = validator.schema
    retry = schema["$defs"]["RetrySpec"]["properties"]["connection_minutes"]
    assert retry["default"] == 720 and "connection" in retry["description"]
    assert {"minimum": 10, "maximum": 1440, "type": "integer"} in retry["anyOf"]
    mb = schema["$defs"]["FullThrottle"]["properties"]["mb_per_s"]
    assert {"minimum": 0.1, "maximum": 10_000, "type": "number"} in mb["anyOf"]


@pytest.mark.parametrize("path", DAG_SPECS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_spec_under_dags_is_valid(validator, path: Path):
    MigrationSpec.from_yaml(path)  # the loader accepts it ...
    assert schema_errors(validator, yaml.safe_load(path.read_text())) == []  # ... so the schema does


def test_dags_hold_the_example():
    assert REPO / "dags" / "migrations" / "example_shop.yaml" in DAG_SPECS


def test_the_round_tripped_document_is_valid(validator):
    """``to_dict()`` writes every default explicitly, nulls included (what ``polar-mc plan`` shows)."""
    document = MigrationSpec.from_yaml(REPO / "dags" / "migrations" / "example_shop.yaml").to_dict()
    assert None in (document["destination"]["project"], document["incremental"]["start_date"])
    assert schema_errors(validator, document) == []


def test_the_demo_spec_is_valid(validator):
    module = next((m for m in ("airflow_provider_polar_mc.sandbox.demo_worker", "airflow_provider_polar_mc.sandbox.demo")
                   if hasattr(importlib.import_module(m), "spec_yaml")), None)
    assert module is not None, "the demo's spec_yaml() moved: point this test at it"
    text = importlib.import_module(module).spec_yaml(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    MigrationSpec.from_yaml(text)
    assert schema_errors(validator, yaml.safe_load(text)) == []


# The integration tests build their specs from a connections fixture; these documents are the same.
CONNECTIONS = types.SimpleNamespace(source="polardb_test", destination="maxcompute_test")
INTEGRATION_SPECS = [
    ("test_precheck_and_schema", "make_spec", (CONNECTIONS, "src_db")),
    ("test_full_load", "make_spec", (CONNECTIONS, ["shop", "crm"])),
    ("test_incremental", "make_spec", (CONNECTIONS, "inc_db")),
    ("test_replica_property", "make_spec", (CONNECTIONS, "prop_db")),
    ("test_first_hour", "spec_document", (CONNECTIONS, ["shop"])),
]


@pytest.mark.parametrize(("module", "function", "args"), INTEGRATION_SPECS, ids=[c[0] for c in INTEGRATION_SPECS])
def test_the_integration_tests_specs_are_valid(validator, module: str, function: str, args: tuple):
    document = getattr(importlib.import_module(f"tests.integration.{module}"), function)(*args)
    MigrationSpec.from_dict(document)
    assert schema_errors(validator, document) == []


def test_shorthands_and_empty_values_are_valid(validator):
    document = {
        **MINIMAL,
        "source": {"databases": ["shop", "crm"], "conn_id": None},  # `conn_id:` with no value: the default
        "destination": None,
        "objects": [{"database": "shop", "tables": "all", "exclude": ["tmp_*"]},
                    {"database": "crm", "tables": ["tickets", {"name": "orders", "target": "crm_orders",
                                                               "columns": {"id": "order_id"}}]}],
        "incremental": {"start_date": dt.date(2026, 1, 1)},  # unquoted in YAML
        "throttle": {"full": {"mb_per_s": 40}},  # an integer is a number
    }
    MigrationSpec.from_dict(document)
    assert schema_errors(validator, document) == []


@pytest.mark.parametrize("dotted", sorted(RANGES))
def test_the_schema_accepts_every_bound_the_loader_accepts(validator, dotted: str):
    minimum, maximum = RANGES[dotted]
    for value in (minimum, maximum - 1 if dotted == "retry.other_minutes" else maximum):
        document = json.loads(json.dumps(MINIMAL))
        if dotted.startswith("retry."):  # other_minutes must stay below connection_minutes
            document["retry"] = {"connection_minutes": 1440, "other_minutes": 1}
        node = document
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
        MigrationSpec.from_dict(document)
        assert schema_errors(validator, document) == [], (dotted, value)


# (id, changes at the top level or in a section, field path the loader reports)
INVALID = [
    ("unknown_top_key", {"retyr": {"other_minutes": 5}}, "retyr"),
    ("unknown_nested_key", {"source": {"databases": ["shop"], "conn": "x"}}, "source.conn"),
    ("unknown_table_key", {"objects": [{"database": "shop", "tables": [{"name": "a", "fliter": "x"}]}]},
     "objects[0].tables[0].fliter"),
    ("bad_choice", {"json_type": "jsonb"}, "json_type"),
    ("bad_migration_type", {"migration_types": ["schema", "fulll"]}, "migration_types[1]"),
    ("tables_wrong_word", {"objects": [{"database": "shop", "tables": "every"}]}, "objects[0].tables"),
    ("out_of_range_low", {"full_load": {"parallelism": 0}}, "full_load.parallelism"),
    ("out_of_range_high", {"throttle": {"full": {"source_qps": 10**6}}}, "throttle.full.source_qps"),
    ("float_for_integer", {"throttle": {"full": {"rows_per_s": 1.5}}}, "throttle.full.rows_per_s"),
    ("tiny_rate", {"throttle": {"full": {"mb_per_s": 1e-300}}}, "throttle.full.mb_per_s"),
    ("string_for_boolean", {"merge": {"enabled": "yes please"}}, "merge.enabled"),
    ("name_pattern", {"name": "Shop-MC"}, "name"),
    ("partition_not_a_prefix", {"partition": ["year", "day"]}, "partition"),
    ("empty_databases", {"source": {"databases": []}}, "source.databases"),
    ("missing_source", {"source": "DELETE"}, "source"),
    ("tag_too_long", {"environment_tag": "t" * 101}, "environment_tag"),
]


@pytest.mark.parametrize(("changes", "path"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_the_schema_refuses_what_the_loader_refuses(validator, changes: dict[str, Any], path: str):
    document = {**MINIMAL, **changes}
    if document.get("source") == "DELETE":
        del document["source"]
    with pytest.raises(SpecError) as raised:
        MigrationSpec.from_dict(document)
    assert path in [problem.path for problem in raised.value.problems]
    assert schema_errors(validator, document), f"the schema accepts {changes}"
