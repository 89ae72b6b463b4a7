"""Every identifier and literal in generated SQL goes through core/sqltext.py: this scan fails when
provider code spells one by hand (an f-string of SQL text putting a value between backticks or single
quotes, or "`" + name + "`" concatenation). The emulator is MaxCompute's side and is
not scanned; sqltext.py itself is where the quoting lives."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_polar_mc"
EXEMPT = {PACKAGE / "core" / "sqltext.py"}
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|ALTER|CREATE|DROP|TABLE|PARTITION|VALUES|"
                       r"SET|SHOW|PURGE|GRANT|LIMIT|AND|OR|IN|LIKE|CAST)\b")


def _sources() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if "emulator" not in path.relative_to(PACKAGE).parts and path not in EXEMPT]


def _hand_quoted(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            text = "".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
            sql = bool(SQL_WORDS.search(text))
            for before, after in zip(parts, parts[1:], strict=False):
                for constant, side in ((before, "end"), (after, "start")):
                    other = after if side == "end" else before
                    if not (isinstance(constant, ast.Constant) and isinstance(constant.value, str)):
                        continue
                    if not isinstance(other, ast.FormattedValue) or other.conversion == ord("r"):
                        continue
                    edge = constant.value[-1:] if side == "end" else constant.value[:1]
                    if sql and edge in ("`", "'"):
                        found.append((node.lineno, ast.unparse(node)[:100]))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for operand in (node.left, node.right):
                if isinstance(operand, ast.Constant) and operand.value in ("`", "'"):
                    found.append((node.lineno, ast.unparse(node)[:100]))
    return sorted({line: code for line, code in reversed(found)}.items())


def test_no_hand_quoted_identifiers_or_literals_in_generated_sql():
    offenders = {str(path.relative_to(PACKAGE)): hits for path in _sources()
                 if (hits := _hand_quoted(ast.parse(path.read_text(encoding="utf-8"))))}
    assert offenders == {}, "quote through core/sqltext.py instead:\n" + "\n".join(
        f"  {path}:{line}: {code}" for path, hits in offenders.items() for line, code in hits)


def test_the_scan_catches_what_it_is_for():
    bad = ast.parse('a = f"SELECT * FROM `{db}`.`{t}`"\nb = "`" + n + "`"\nc = f"WHERE x = \'{v}\'"\n')
    assert [line for line, _ in _hand_quoted(bad)] == [1, 2, 3]
    fine = ast.parse('a = f"table {name!r} not found"\nb = f"SELECT {quote(t)} FROM {table}"\n')
    assert _hand_quoted(fine) == []
