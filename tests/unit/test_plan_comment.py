"""``polar-mc plan`` names each source table in a ``--`` comment: a name holding a newline must not end
the comment line and put the rest of the name on a line of its own (where it would run as SQL)."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_provider_polar_mc.cli import render_plan
from airflow_provider_polar_mc.core import sqltext


def test_a_newline_in_a_table_name_cannot_end_the_plan_comment():
    plan = SimpleNamespace(selection=SimpleNamespace(source_name="t\nDROP TABLE x;"), ddls=[])
    script = render_plan([plan])
    assert not any(line.lstrip().upper().startswith("DROP") for line in script.splitlines())
    assert script.splitlines()[0] == "-- t\\x0aDROP TABLE x;"


def test_sql_comment_is_one_line_whatever_the_text():
    for text in ("a\nb", "a\rb", "a\r\nb", "a\u2028b", "a\x00b", "-- x\n#y"):
        comment = sqltext.sql_comment(text)
        assert comment.startswith("-- ") and len(comment.splitlines()) == 1
