"""Random DML interleaved with random DDL of every followed kind (docs/schema-changes.md), on two tables,
across several intervals after a full load, under the default policy: no batch fails, and after each
merge the replica equals the source value for value (ValidateOperator's comparison).

The DDL kinds: ADD COLUMN (NULL, a constant DEFAULT, NOT NULL's implicit default; FIRST / AFTER / last),
DROP COLUMN, RENAME COLUMN, CHANGE old new (same definition), MODIFY that widens (VARCHAR length, NOT NULL
-> NULL; INT -> BIGINT and DECIMAL(10,2) -> DECIMAL(14,4), which widen the MaxCompute column in place),
TRUNCATE TABLE; and one the batch cannot follow, an ENUM's members reordered (existing values keep their
text but not their index, and no row event says which), which stops that table for a resync: the test runs it (as the incremental DAG's start_resync does)
and the replicas are equal again after the next merge, the other table equal throughout. The test keeps a model of each table's current columns so that every generated
statement is valid for the table as it is (hypothesis draws them as it goes, ``st.data()``).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_polar_mc.core.resync import TableResync
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from tests.integration.session_clock import execute_at
from tests.integration.test_incremental import inside, replica_matches_source, run_interval
from tests.integration.test_replica_property import make_spec, snapshot_before_first, store_of

pytestmark = pytest.mark.integration

INTERVALS = 3


@dataclass
class Column:
    name: str
    kind: str  # int | bigint | varchar | decimal | wide_decimal | datetime | enum
    length: int = 0  # varchar
    nullable: bool = True
    reordered: bool = False  # enum: members in the other order

    def sql_type(self) -> str:
        return {"int": "INT", "bigint": "BIGINT", "varchar": f"VARCHAR({self.length})", "decimal": "DECIMAL(10,2)",
                "wide_decimal": "DECIMAL(14,4)", "datetime": "DATETIME(3)",
                "enum": "ENUM('r','q','p')" if self.reordered else "ENUM('p','q','r')"}[self.kind]  # fmt: skip


@dataclass
class Table:
    name: str
    key: Column
    columns: list[Column] = field(default_factory=list)
    rows: int = 0
    next_key: int = 100

    @property
    def names(self) -> list[str]:
        return [self.key.name] + [c.name for c in self.columns]


def values(kind: str, length: int = 0) -> st.SearchStrategy[str | None]:
    """SQL literals (quoted where needed) of a column kind."""
    letters = st.text("abcxyzé ", max_size=max(1, min(length, 12)))
    by_kind = {
        "int": st.integers(-10_000, 10_000).map(str),
        "bigint": st.integers(-(2**63), 2**63 - 1).map(str),  # after the widening, values only BIGINT holds
        "varchar": letters.map(lambda s: "'" + s + "'"),
        "decimal": st.decimals(-9999, 9999, places=2, allow_nan=False, allow_infinity=False).map(str),
        # after the widening, values only DECIMAL(14,4) holds
        "wide_decimal": st.decimals(-9999999999, 9999999999, places=4, allow_nan=False, allow_infinity=False).map(str),
        "datetime": st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1)).map(
            lambda d: f"'{d:%Y-%m-%d %H:%M:%S}.{d.microsecond // 1000:03d}'"),
        "enum": st.sampled_from(["'p'", "'q'", "'r'"]),
    }  # fmt: skip
    return st.one_of(st.none(), by_kind[kind], by_kind[kind])


DEFAULTS = {"int": ["0", "7", "-3"], "bigint": ["0", "9000000000"], "varchar": ["''", "'it''s'", "'n/a'"], "decimal": ["1.50", "0", "-2.25"],
            "wide_decimal": ["1.5000"],
            "datetime": ["'2026-11-30 12:00:00.000'"], "enum": ["'q'"]}  # fmt: skip


class Session:
    def __init__(self, server, db: str, tables: list[Table]):
        self.server, self.db, self.tables = server, db, tables
        self.moment = 0.0
        self.counter = 0
        self.ddl: list[str] = []

    def run(self, sql: str) -> None:
        self.moment += 1
        execute_at(self.server, self.moment, sql)

    def dml(self, data, table: Table) -> None:
        kind = data.draw(st.sampled_from(["insert", "insert", "update", "update", "delete"]))
        if kind == "insert" or table.rows == 0:
            key = table.next_key
            table.next_key += 1
            chosen = [c for c in table.columns if data.draw(st.booleans())]
            names, literals = [table.key.name], [str(key) if table.key.kind == "int" else f"'k{key}'"]
            for c in table.columns:
                if c in chosen or not c.nullable:
                    value = data.draw(values(c.kind, c.length))
                    if value is None and not c.nullable:
                        value = DEFAULTS[c.kind][0]
                    names.append(c.name)
                    literals.append(value or "NULL")
            columns = ", ".join(f"`{n}`" for n in names)
            self.run(f"INSERT INTO {self.db}.{table.name} ({columns}) VALUES ({', '.join(literals)})")
            table.rows += 1
        elif kind == "update" and table.columns:
            c = data.draw(st.sampled_from(table.columns))
            value = data.draw(values(c.kind, c.length)) or ("NULL" if c.nullable else DEFAULTS[c.kind][0])
            share = data.draw(st.integers(2, 5))
            self.run(f"UPDATE {self.db}.{table.name} SET `{c.name}` = {value} WHERE CRC32(`{table.key.name}`) % {share} = 0")
        else:
            share = data.draw(st.integers(3, 9))
            self.run(f"DELETE FROM {self.db}.{table.name} WHERE CRC32(`{table.key.name}`) % {share} = 1")

    def alter(self, data, table: Table) -> None:
        kinds = ["add", "add", "truncate"]
        if table.columns:
            kinds += ["drop", "rename", "change", "modify"]
        if any(c.kind in ("int", "decimal") for c in table.columns):
            kinds += ["widen"]
        if any(c.kind == "enum" for c in table.columns):
            kinds += ["reorder"]
        kind = data.draw(st.sampled_from(kinds))
        self.counter += 1
        if kind == "add":
            c = Column(f"c{self.counter}", data.draw(st.sampled_from(["int", "varchar", "decimal", "datetime", "enum"])), 16)
            form = data.draw(st.sampled_from(["null", "default", "not_null", "not_null_default"]))
            sql = c.sql_type()
            if form == "default":
                sql += f" DEFAULT {data.draw(st.sampled_from(DEFAULTS[c.kind]))}"
            elif form.startswith("not_null"):
                c.nullable = False
                sql += " NOT NULL" + (f" DEFAULT {data.draw(st.sampled_from(DEFAULTS[c.kind]))}" if form != "not_null" else "")
            if c.kind == "datetime" and form == "not_null":  # its implicit default is the zero date
                sql = c.sql_type() + " NULL"
                c.nullable = True
            place = data.draw(st.sampled_from(["", " FIRST", " AFTER"]))
            if place == " AFTER":
                place = f" AFTER `{data.draw(st.sampled_from(table.names))}`"
            statement = f"ALTER TABLE {self.db}.{table.name} ADD COLUMN `{c.name}` {sql}{place}"
            table.columns.append(c)
        elif kind == "drop":
            c = data.draw(st.sampled_from(table.columns))
            statement = f"ALTER TABLE {self.db}.{table.name} DROP COLUMN `{c.name}`"
            table.columns.remove(c)
        elif kind in ("rename", "change"):
            c = data.draw(st.sampled_from(table.columns))
            new = f"r{self.counter}"
            statement = (f"ALTER TABLE {self.db}.{table.name} RENAME COLUMN `{c.name}` TO `{new}`" if kind == "rename"
                         else f"ALTER TABLE {self.db}.{table.name} CHANGE `{c.name}` `{new}` {c.sql_type()}"
                         + ("" if c.nullable else " NOT NULL"))  # fmt: skip
            c.name = new
        elif kind == "modify":
            c = data.draw(st.sampled_from(table.columns))
            if c.kind == "varchar":
                c.length += data.draw(st.integers(0, 20))
            c.nullable = True
            statement = f"ALTER TABLE {self.db}.{table.name} MODIFY `{c.name}` {c.sql_type()} NULL"
        elif kind == "widen":  # a new MaxCompute type, widened in place
            c = data.draw(st.sampled_from([c for c in table.columns if c.kind in ("int", "decimal")]))
            c.kind = {"int": "bigint", "decimal": "wide_decimal"}[c.kind]
            statement = f"ALTER TABLE {self.db}.{table.name} MODIFY `{c.name}` {c.sql_type()}" + ("" if c.nullable else " NOT NULL")
        elif kind == "reorder":  # not followed: the table is resynced
            c = data.draw(st.sampled_from([c for c in table.columns if c.kind == "enum"]))
            c.reordered = not c.reordered
            statement = f"ALTER TABLE {self.db}.{table.name} MODIFY `{c.name}` {c.sql_type()}" + ("" if c.nullable else " NOT NULL")
        else:
            statement = f"TRUNCATE TABLE {self.db}.{table.name}"
            table.rows = 0
        self.ddl.append(statement)
        self.run(statement)


def create_tables(server, db: str) -> list[Table]:
    server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(20), n INT NOT NULL, d DECIMAL(10,2), t DATETIME(3))",
        f"CREATE TABLE {db}.b (k VARCHAR(8) PRIMARY KEY, x INT, s ENUM('p','q','r'))",
        f"INSERT INTO {db}.a VALUES " + ",".join(f"({i}, 'v{i}', {i}, {i}.25, '2020-01-01 00:00:0{i % 10}.5')" for i in range(1, 31)),
        f"INSERT INTO {db}.b VALUES " + ",".join(f"('k{i}', {i}, 'p')" for i in range(1, 16)),
    )
    a = Table("a", Column("id", "int"), [Column("v", "varchar", 20), Column("n", "int", nullable=False),
                                         Column("d", "decimal"), Column("t", "datetime")], rows=30)  # fmt: skip
    b = Table("b", Column("k", "varchar", 8), [Column("x", "int"), Column("s", "enum")], rows=15)
    return [a, b]


@settings(max_examples=int(os.environ.get("POLAR_MC_DDL_EXAMPLES", "4")), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(data=st.data())
def test_random_dml_and_ddl_of_every_kind_keep_the_replica_equal_to_the_source(connections, mysql_server,
                                                                                        data):
    db = f"ddl_{uuid.uuid4().hex[:8]}"
    tables = create_tables(mysql_server, db)
    session = Session(mysql_server, db, tables)
    spec = make_spec(connections, db)
    try:
        SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
        snapshot_before_first(spec, mysql_server)
        FullLoadOperator(task_id="full", spec=spec).execute({})
        migration = load_spec(spec)
        resync = TableResync(migration, resolve.source_endpoint(migration), resolve.destination(migration), store_of(spec))
        for i in range(INTERVALS + 1):
            session.moment = inside(i, 10)
            for step in range(data.draw(st.integers(4, 10), label=f"steps in interval {i}") if i < INTERVALS else 0):
                table = data.draw(st.sampled_from(tables))
                if (i, step) == (0, 1) or data.draw(st.integers(0, 3)) == 0:  # at least one DDL
                    session.alter(data, table)
                else:
                    session.dml(data, table)
            summary = run_interval(spec, i)  # never fails: by default every DDL is followed or resynced
            waiting = set(summary.get("resync_requested", ()))
            results = replica_matches_source(spec)
            # A table stopped for a resync in this interval is equal again after the next merge.
            assert all(r.equal for r in results if r.source not in waiting), [r.summary() for r in results]
            if waiting:
                resync.run(sorted(waiting))
            elif i == INTERVALS - 1:
                break  # the last interval's changes are merged and equal: no extra interval needed
        print(f"\n{len(session.ddl)} DDL statements: " + "; ".join(session.ddl))  # shown with -s
    finally:
        mysql_server.execute(f"DROP DATABASE IF EXISTS {db}")

