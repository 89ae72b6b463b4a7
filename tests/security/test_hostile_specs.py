"""Hostile migration specs: each is refused when the spec loads, every problem at its field path, as a
SpecError (what the command line and the DAG file show), never a traceback; nothing is contacted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_provider_polar_mc.exceptions import SpecError
from airflow_provider_polar_mc.spec import MigrationSpec

BASE: dict[str, Any] = {"name": "shop", "source": {"conn_id": "src", "databases": ["shop"]},
                        "destination": {"conn_id": "dst"}, "objects": [{"database": "shop", "tables": ["orders"]}]}


def changed(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    target = document
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    target[keys[-1]] = value
    return document


def table(**entry: Any) -> list[dict[str, Any]]:
    return [{"database": "shop", "tables": [{"name": "orders", **entry}]}]


# (case id, document, field path, words in its message)
CASES = [
    ("name_injection", changed("name", "shop'; DROP TABLE x; --"), "name", ""),
    ("name_newline", changed("name", "shop\nDROP"), "name", ""),
    ("name_path_traversal", changed("name", "../../etc"), "name", ""),
    ("name_huge", changed("name", "a" * 10_000), "name", ""),
    ("target_injection", changed("objects", table(target="t; DROP TABLE orders")), "objects[0].tables[0].target", ""),
    ("target_backtick", changed("objects", table(target="t`x")), "objects[0].tables[0].target", ""),
    ("target_newline", changed("objects", table(target="t\nDROP TABLE x")), "objects[0].tables[0].target", ""),
    ("target_unicode", changed("objects", table(target="订单")), "objects[0].tables[0].target", ""),
    ("target_too_long", changed("objects", table(target="t" * 200)), "objects[0].tables[0].target", ""),
    ("column_map_injection", changed("objects", table(columns={"id": "id, x STRING); DROP TABLE y; --"})),
     "objects[0].tables[0].columns", ""),
    ("column_map_backtick", changed("objects", table(columns={"id": "a`b"})), "objects[0].tables[0].columns", ""),
    ("column_map_not_string", changed("objects", table(columns={"id": ["a"]})), "objects[0].tables[0].columns", ""),
    ("prefix_injection", changed("batch_rename", {"prefix": "p`; DROP"}), "batch_rename.prefix", ""),
    ("suffix_injection", changed("batch_rename", {"suffix": "s); DROP"}), "batch_rename.suffix", ""),
    ("replica_pattern_injection", changed("merge", {"replica_name": "{table}; DROP TABLE x"}), "merge.replica_name", ""),
    ("replica_pattern_format_attr", changed("merge", {"replica_name": "{table.__class__}"}), "merge.replica_name", ""),
    ("replica_pattern_format_index", changed("merge", {"replica_name": "{table[0]}"}), "merge.replica_name", ""),
    ("heartbeat_table_injection", changed("heartbeat", {"enabled": True, "table": "hb`; DROP TABLE x; --"}),
     "heartbeat.table", ""),
    ("heartbeat_db_outside_source", changed("heartbeat", {"enabled": True, "database": "mysql"}),
     "heartbeat.database", ""),
    ("heartbeat_interval_negative", changed("heartbeat", {"enabled": True, "interval_seconds": -1}),
     "heartbeat.interval_seconds", ""),
    ("parallelism_huge", changed("full_load", {"parallelism": 10_000}), "full_load.parallelism", ""),
    ("chunk_rows_zero", changed("full_load", {"chunk_rows": 0}), "full_load.chunk_rows", ""),
    ("chunk_rows_string", changed("full_load", {"chunk_rows": "1; DROP"}), "full_load.chunk_rows", ""),
    ("retry_huge", changed("retry", {"connection_minutes": 10**12}), "retry.connection_minutes", ""),
    ("throttle_negative", changed("throttle", {"full": {"rows_per_s": -5}}), "throttle.full.rows_per_s", ""),
    ("unknown_key", changed("sourse", {"conn_id": "x"}), "sourse", "did you mean"),
    ("environment_tag_huge", changed("environment_tag", "x" * 1000), "environment_tag", ""),
    ("start_date_garbage", changed("incremental", {"start_date": "2026-13-45; DROP"}), "incremental.start_date", ""),
    ("partition_injection", changed("partition", ["day; DROP"]), "partition", ""),
    ("conn_id_not_string", changed("source", {"conn_id": {"$gt": ""}, "databases": ["shop"]}), "source.conn_id", ""),
    ("database_list_not_list", changed("source", {"conn_id": "src", "databases": "shop; DROP"}), "source.databases", ""),
    ("objects_not_list", changed("objects", "all"), "objects", ""),
    ("include_pattern_typo", changed("objects", [{"database": "shop", "tables": "all", "include": ["ord[ers"]}]),
     "objects[0].include[0]", ""),
]


@pytest.mark.security_case("malformed_spec")
@pytest.mark.parametrize(("document", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_spec_is_refused_at_its_field(document: dict[str, Any], path: str, words: str):
    try:
        MigrationSpec.from_dict(document)
    except SpecError as error:
        messages = {p.path: p.message for p in error.problems}
        located = [p for p in messages if p == path or p.startswith(path)]
        assert located, f"no problem at {path!r}: {messages}"
        assert all(messages[p].strip() for p in located)
        assert words in " ".join(messages[p] for p in located)
        assert "Traceback" not in str(error)
    else:
        raise AssertionError(f"SILENT: the spec was accepted: {path}")


YAML_CASES = [
    ("yaml_billion_laughs", "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8)), "alias"),
    ("yaml_python_object", "name: !!python/object/apply:os.system ['touch /tmp/polar_mc_pwned']\n", ""),
    ("yaml_duplicate_key", "name: a\nname: b\nsource: {conn_id: s, databases: [d]}\n", "twice"),
    ("yaml_deep_nesting", "name: " + "[" * 200 + "]" * 200 + "\n", "nest"),
    ("yaml_not_utf8", b"name: \xff\xfe\n", "UTF-8"),
    ("yaml_huge", "name: " + "a" * (2 * 1024 * 1024) + "\n", "MiB"),
    ("yaml_not_a_mapping", "- just\n- a list\n", ""),
    ("yaml_tab_indent", "name: a\nsource:\n\tconn_id: s\n", ""),
]


@pytest.mark.security_case("malformed_spec")
@pytest.mark.parametrize(("text", "words"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_hostile_yaml_is_refused_with_a_clear_error(tmp_path, text: str | bytes, words: str):
    path = tmp_path / "spec.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as raised:
        MigrationSpec.from_yaml(path)
    assert words.lower() in str(raised.value).lower()
    assert "Traceback" not in str(raised.value)
    assert not __import__("os").path.exists("/tmp/polar_mc_pwned"), "DAMAGE: a YAML tag ran code"
