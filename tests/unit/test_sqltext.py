"""The SQL-text layer without a server: quoting, literal shapes, refusals, the tokenizer."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from airflow_provider_polar_mc.core import sqltext

HOSTILE_NAMES = [
    "plain", "we`ird", "``", "x` UNION ALL SELECT 1 FROM mysql.user#", "semi;colon", "new\nline",
    "dash -- dash", "hash # hash", "quote ' \"", "unicode_名前_é", "x" * 64, " leading", "back\\slash",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_mysql_name_is_one_backquoted_token(name):
    quoted = sqltext.quote_mysql_name(name)
    tokens = sqltext.tokenize_mysql(quoted)
    assert [(t.kind, t.text) for t in tokens] == [("quoted_name", name)]


@pytest.mark.parametrize("name", ["", "x" * 65, "nul\x00", "trailing ", "emoji_\U0001F600"])
def test_names_mysql_cannot_hold_are_refused(name):
    with pytest.raises(ValueError, match="is not a MySQL identifier"):
        sqltext.quote_mysql_name(name)


def test_text_literals_contain_no_quote_to_escape():
    literal = sqltext.mysql_text("' OR 1=1 -- \\' \" `", collation="utf8mb4_bin")
    assert literal.startswith("_utf8mb4 X'") and literal.endswith(" COLLATE utf8mb4_bin")
    assert literal.count("'") == 2
    with pytest.raises(ValueError):
        sqltext.mysql_text("x", charset="utf8mb4; DROP")
    with pytest.raises(ValueError):
        sqltext.mysql_text("名前", charset="latin1")


def test_mysql_literals_by_type():
    assert sqltext.mysql_literal(None) == "NULL"
    assert sqltext.mysql_literal(-5) == "-5"
    assert sqltext.mysql_literal(decimal.Decimal("1E+3")) == "1000"
    assert sqltext.mysql_literal(b"\x00'") == "X'0027'"
    assert sqltext.mysql_literal(dt.date(2026, 1, 2)) == "DATE'2026-01-02'"
    assert sqltext.mysql_literal(dt.datetime(2026, 1, 2, 3, 4, 5, 6)) == "TIMESTAMP'2026-01-02 03:04:05.000006'"
    for bad in (float("nan"), decimal.Decimal("inf")):
        with pytest.raises(ValueError):
            sqltext.mysql_literal(bad)
    with pytest.raises(TypeError):
        sqltext.mysql_literal(object())


@pytest.mark.parametrize("name", ["orders_base", "Orders", "_x", "a" * 128])
def test_maxcompute_names(name):
    assert sqltext.quote_mc_name(name) == f"`{name}`"


@pytest.mark.parametrize("name", ["", "a`b", "a b", "1abc", "a" * 129, "x;drop", "名前"])
def test_maxcompute_refuses_what_it_cannot_name(name):
    with pytest.raises(ValueError, match="not a MaxCompute name"):
        sqltext.quote_mc_name(name)


def test_maxcompute_strings_and_partitions():
    assert sqltext.mc_string("it's \\ \n") == "'it\\'s \\\\ \\n'"
    assert sqltext.mc_partition_spec(["y", "m"], ["2026", "01"]) == "y='2026',m='01'"
    with pytest.raises(ValueError):
        sqltext.mc_partition_spec(["y';drop"], ["1"])


def test_comment_lines_cannot_end_early():
    line = sqltext.sql_comment("db.t\nDROP TABLE x;\r")
    assert "\n" not in line and "\r" not in line and line.startswith("-- ")


def test_tokenizer_respects_quotes_and_comments():
    tokens = sqltext.tokenize_mysql("ALTER TABLE `a``b` /* c */ ADD COLUMN x INT DEFAULT 'it''s # no' -- tail\n")
    assert [t.text for t in tokens] == ["ALTER", "TABLE", "a`b", "ADD", "COLUMN", "x", "INT", "DEFAULT", "'it''s # no'"]
    assert tokens[-1].string_value == "it's # no"
    executable = sqltext.tokenize_mysql("ALTER TABLE t /*!80013 ALGORITHM=INSTANT */ ADD c INT")
    assert "ALGORITHM" in [t.text for t in executable]
    with pytest.raises(ValueError):
        sqltext.tokenize_mysql("SELECT 'unterminated")


def test_typed_maxcompute_literals():
    import datetime as dt
    from decimal import Decimal

    from airflow_provider_polar_mc.core.sqltext import mc_typed_literal

    assert mc_typed_literal(None, "BIGINT") == "NULL"
    assert mc_typed_literal(7, "INT") == "CAST('7' AS INT)"
    assert mc_typed_literal(Decimal("-1.500"), "DECIMAL(8,3)") == "CAST('-1.500' AS DECIMAL(8,3))"
    assert mc_typed_literal(1.5, "DOUBLE") == "CAST('1.5' AS DOUBLE)"
    assert mc_typed_literal("it's", "STRING") == "'it\\'s'"
    assert mc_typed_literal(dt.date(2026, 11, 30), "DATE") == "CAST('2026-11-30' AS DATE)"
    moment = dt.datetime(2026, 11, 30, 12, 0, 0, 500000)
    assert mc_typed_literal(moment, "TIMESTAMP_NTZ") == "CAST('2026-11-30 12:00:00.500000' AS TIMESTAMP_NTZ)"
    with pytest.raises(ValueError, match="time-zone"):
        mc_typed_literal(moment, "DATETIME")
    with pytest.raises(ValueError, match="not a MaxCompute type"):
        mc_typed_literal(1, "INT) UNION SELECT (1")
