"""The filter grammar (core/filters.py): what it accepts, how it renders, what it refuses and why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_polar_mc.core.filters import (
    ALLOWED_FUNCTIONS,
    FilterError,
    filter_problem,
    parse_filter,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spec.md"


@pytest.mark.parametrize(("text", "sql"), [
    ("id > 1", "(`id` > 1)"),
    ("status = 'paid'", "(`status` = _utf8mb4 X'70616964')"),
    ("`we``ird` = 1", "(`we``ird` = 1)"),
    ("a || b", "(`a` OR `b`)"),
    ("a IS NOT NULL", "(NOT (`a` IS NULL))"),
    ("a NOT IN (1, 2)", "(NOT (`a` IN (1, 2)))"),
    ("a BETWEEN 1 AND 2", "(`a` BETWEEN 1 AND 2)"),
    ("a LIKE 'x!%' ESCAPE '!'", "(`a` LIKE _utf8mb4 X'782125' ESCAPE _utf8mb4 X'21')"),
    ("a REGEXP '^x'", "(`a` REGEXP _utf8mb4 X'5e78')"),
    ("LOWER(name) = 'x'", "(LOWER(`name`) = _utf8mb4 X'78')"),
    ("d >= '2024-01-01' + INTERVAL 1 DAY", "(`d` >= (_utf8mb4 X'323032342d30312d3031' + INTERVAL 1 DAY))"),
    ("CAST(a AS UNSIGNED) = 1", "(CAST(`a` AS UNSIGNED) = 1)"),
    ("CAST(a AS DECIMAL(10, 2)) > 1", "(CAST(`a` AS DECIMAL(10, 2)) > 1)"),
    ("CONVERT(a USING latin1) = 'x'", "(CONVERT(`a` USING latin1) = _utf8mb4 X'78')"),
    ("CASE WHEN a > 1 THEN 1 ELSE 0 END = 1", "((CASE WHEN (`a` > 1) THEN 1 ELSE 0 END) = 1)"),
    ("TIMESTAMPDIFF(SECOND, a, b) > 5", "(TIMESTAMPDIFF(SECOND, `a`, `b`) > 5)"),
    ("EXTRACT(YEAR FROM d) = 2024", "(EXTRACT(YEAR FROM `d`) = 2024)"),
    ("is_active", "`is_active`"),
    ("status = '\\' OR 1=1 #'", "(`status` = _utf8mb4 X'27204f5220313d312023')"),
])
def test_accepted_filters_render_with_quoted_names_and_hex_strings(text: str, sql: str):
    assert parse_filter(text).sql == sql


def test_columns_are_collected_lower_case():
    assert parse_filter("Status = 'x' AND LOWER(`Name`) LIKE 'a%' OR id IN (1)").columns == {"status", "name", "id"}


@pytest.mark.parametrize(("text", "words"), [
    ("SLEEP(1) = 0", "may not call SLEEP()"),
    ("NOW() > d", "depends on when or where it runs"),
    ("id IN (SELECT 1)", "subquer"),
    ("@@version > 1", "system variables"),
    ("db.t.a = 1", "own columns"),
    ("a = 1 -- x", "comments"),
    ("a = 1;", "';'"),
    ("a > > 3", "SQL syntax error at character 5"),
    ("(a = 1", "1 unclosed '('"),
    ("a = 1)", "without a matching '('"),
    ("a = 'x", "unterminated ' quote"),
    ("'x'", "not a constant"),
    ("LOWR(a) = 'x'", "did you mean LOWER()?"),
    ("ROUND() = 1", "takes 1 to 2 arguments, got 0"),
    ("CAST(a AS GEOMETRY) = 1", "cannot CAST"),
    ("j->'$.a' = 1", "JSON_EXTRACT"),
])
def test_refused_filters_say_why(text: str, words: str):
    with pytest.raises(FilterError, match=re.escape(words)):
        parse_filter(text)


def test_filter_problem_is_none_or_the_reason():
    assert filter_problem("id > 0") is None
    assert "SLEEP" in filter_problem("SLEEP(1)")
    assert "string" in filter_problem(5)


def test_docs_list_exactly_the_allowed_functions():
    text = DOCS.read_text()
    line = next(line for line in text.splitlines() if line.startswith("* these deterministic built-in functions:"))
    assert set(re.findall(r"`([A-Z0-9_]+)`", line)) == set(ALLOWED_FUNCTIONS)
