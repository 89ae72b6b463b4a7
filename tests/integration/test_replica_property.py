"""Incremental exactly-once, the hard way: random DML before, during and after the full load, across
several intervals, checked value for value against the source; a batch killed with SIGKILL mid-write and
between its partition commit and its bookkeeping; purged and reset binlogs; contiguous intervals.

Everything runs through the real operators against the private MariaDB (``mysql_server``) and the
MaxCompute emulator, like tests/integration/test_incremental.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest
from airflow.sdk.exceptions import AirflowFailException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog import TableSchema, read_changes
from airflow_provider_polar_mc.core.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.coordinates import BinlogCoordinate
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND, FullLoader
from airflow_provider_polar_mc.core.validate import _normalise
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration import test_values as tv
from tests.integration.test_binlog import purge_until_gone
from tests.integration.test_incremental import FIRST, interval, partition_rows, replica_matches_source, run_interval

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def hour_partition(i: int) -> str:
    start = FIRST + dt.timedelta(hours=i)
    return (
        f"modifytime_year='{start:%Y}',modifytime_month='{start:%m}',modifytime_day='{start:%d}',"
        f"modifytime_hour='{start:%H}'"
    )


def make_spec(connections, db: str, *, chunk_rows: int = 100_000, parallelism: int = 1, block_rows: int | None = None) -> dict:
    incremental = {"start_date": FIRST.isoformat(), "settle_seconds": 0}
    if block_rows:
        incremental["block_rows"] = block_rows
    return {
        "name": f"prop_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": [db]},
        "destination": {"conn_id": connections.destination},
        "objects": [{"database": db, "tables": "all"}],
        "batch_rename": {"prefix": f"p{uuid.uuid4().hex[:6]}_"},
        "partition": ["year", "month", "day", "hour"],
        "full_load": {"chunk_rows": chunk_rows, "parallelism": parallelism},
        "incremental": incremental,
    }


def assert_replicas_match(spec: dict) -> None:
    results = replica_matches_source(spec)
    assert all(r.equal for r in results), [r.summary() for r in results]


def store_of(spec: dict) -> MaxComputeCheckpointStore:
    migration = load_spec(spec)
    return MaxComputeCheckpointStore(resolve.destination(migration), migration.name)


# =====================================================================================================
# 1. The property: random DML before / during / after the full load; replica == source
# =====================================================================================================

EVERY = "every_t"
PAIRS = "pairs"
PAIRS_DDL = (
    f"CREATE TABLE {{db}}.{PAIRS} (code VARCHAR(6) NOT NULL, region CHAR(2) NOT NULL, n INT NOT NULL, "
    "name VARCHAR(40), amount DECIMAL(10,2), at DATETIME(6), UNIQUE KEY (code, region, n))"
)
FIXED_ROWS = tv._rows()  # the extreme rows of test_values: snapshot data of every_t
COPIES = 12  # every_t starts with COPIES x 7 rows; ids k*10 + r
CHUNK_ROWS = 13

NULL = ("NULL", ())


def _p(value) -> tuple[str, tuple]:
    return ("%s", (value,))


def _nullable(strategy):
    return st.one_of(st.just(NULL), strategy, strategy, strategy)


def _fmt_date(d: dt.date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _fmt_datetime(d: dt.datetime) -> str:
    return f"{_fmt_date(d)} {d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_datetime_in_ns_range = st.datetimes(dt.datetime(1677, 9, 22), dt.datetime(2262, 4, 10)).map(_fmt_datetime)
_datetime_any = st.one_of(
    _datetime_in_ns_range,
    _datetime_in_ns_range,
    st.datetimes(dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)).map(_fmt_datetime),  # -> NULL
    st.sampled_from(["0000-00-00 00:00:00", "2020-00-10 10:00:00.5", "2020-05-00 00:00:00"]),  # zero dates -> NULL
)
_timestamp = st.one_of(
    st.datetimes(dt.datetime(1970, 1, 1, 0, 0, 1), dt.datetime(2038, 1, 19, 3, 14, 6)).map(_fmt_datetime),
    st.just("0000-00-00 00:00:00"),
)


@st.composite
def _time(draw) -> str:
    sign = draw(st.sampled_from(["", "-"]))
    h, m, s = draw(st.integers(0, 838)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    return f"{sign}{h}:{m:02d}:{s:02d}.{draw(st.integers(0, 999_999)):06d}"


_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), _text
)
_json = st.recursive(
    _json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3), max_leaves=6
).map(lambda v: json.dumps(v, ensure_ascii=False))
_coordinate = st.floats(-1e6, 1e6, allow_nan=False).map(repr)


def _decimal(precision: int, scale: int):
    bound = Decimal(10) ** (precision - scale) - Decimal(10) ** -scale
    return st.decimals(-bound, bound, places=scale, allow_nan=False, allow_infinity=False).map(str)


def _int(bits: int, unsigned: bool):
    return st.integers(0, 2**bits - 1) if unsigned else st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _point():
    return st.tuples(_coordinate, _coordinate).map(lambda xy: ("ST_GeomFromText(%s)", (f"POINT({xy[0]} {xy[1]})",)))


def _polygon():
    def triangle(xyd):
        x, y, d = (float(v) for v in xyd)
        points = [(x, y), (x + d, y), (x, y + d), (x, y)]
        return ("ST_GeomFromText(%s)", ("POLYGON((" + ",".join(f"{a!r} {b!r}" for a, b in points) + "))",))

    return st.tuples(_coordinate, _coordinate, st.floats(1, 1000)).map(triangle)


# column -> strategy of (sql fragment, params) for every_t (id excluded: keys are drawn separately)
EVERY_VALUES = {
    "ti": _int(8, False), "ti1": _int(8, False), "tiu": _int(8, True), "si": _int(16, False), "siu": _int(16, True),
    "mi": _int(24, False), "miu": _int(24, True), "i": _int(32, False), "iu": _int(32, True),
    "bi": _int(64, False), "biu": _int(64, True),
    "d12": _decimal(12, 2), "d38": _decimal(38, 18), "d65": _decimal(65, 30), "d20": _decimal(20, 0),
    "f": st.floats(width=32, allow_nan=False, allow_infinity=False).map(repr),
    "dbl": st.floats(allow_nan=False, allow_infinity=False).map(repr),
    "b1": st.integers(0, 1), "b8": st.integers(0, 255), "b64": st.integers(0, 2**64 - 1),
    "ch": st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=5), "vc": _text,
    "tx": st.text(max_size=40), "vcb": st.binary(max_size=16), "bin4": st.binary(max_size=4),
    "bl": st.binary(max_size=64), "chb": st.binary(max_size=4),
    "dte": st.one_of(st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)).map(_fmt_date), st.just("0000-00-00")),
    **{f"dt{p}": _datetime_any for p in tv.FSPS},
    **{f"ts{p}": _timestamp for p in tv.FSPS},
    "tm": _time(), "tm1": _time(), "tm3": _time(), "tm6": _time(),
    "y": st.one_of(st.integers(1901, 2155), st.just(0)),
    "e": st.sampled_from(["a", "b", "it's", "nope", ""]),
    "s": st.lists(st.sampled_from("xyz"), unique=True).map(",".join),
    "j": _json,
}  # fmt: skip
EVERY_SQL_VALUES = {name: _nullable(s.map(_p)) for name, s in EVERY_VALUES.items()}
EVERY_SQL_VALUES["s_nn"] = EVERY_VALUES["s"].map(_p)
EVERY_SQL_VALUES["pt"] = _nullable(_point())
EVERY_SQL_VALUES["pg"] = _nullable(_polygon())

PAIRS_KEYS = {
    "code": st.sampled_from(["a", "A", "b", "é", "E", "c ", "ü😀"]),
    "region": st.sampled_from(["cn", "us", "sg"]),
    "n": st.integers(0, 6),
}
PAIRS_SQL_VALUES = {
    "name": _nullable(_text.map(_p)),
    "amount": _nullable(_decimal(10, 2).map(_p)),
    "at": _nullable(_datetime_any.map(_p)),
}

# The one ADD COLUMN: (table, clause, value strategy of the new column). No DEFAULT: see the report on
# ADD COLUMN ... DEFAULT (existing rows change without row events).
ADDED = [
    (EVERY, "ADD COLUMN extra VARCHAR(10) AFTER vc", _text.map(lambda s: s[:10])),
    (EVERY, "ADD COLUMN extra DECIMAL(65,30) FIRST", _decimal(65, 30)),
    (EVERY, "ADD COLUMN extra DATETIME(6)", _datetime_in_ns_range),
    (EVERY, "ADD COLUMN extra JSON", _json),
    (EVERY, "ADD COLUMN extra BIT(8) AFTER id", st.integers(0, 255)),
    (PAIRS, "ADD COLUMN extra BIGINT UNSIGNED AFTER region", _int(64, True)),
    (PAIRS, "ADD COLUMN extra TIMESTAMP(3) NULL", _timestamp),
]


def _columns_subset(values: dict, min_size: int = 1, max_size: int = 4):
    names = sorted(values)
    return st.lists(st.sampled_from(names), min_size=min_size, max_size=max_size, unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries({name: values[name] for name in chosen})
    )


def _ops(extra_values):
    """Strategy of one DML operation (a dict); ``extra`` values are used once the column exists."""
    every_id = st.integers(1, COPIES * 10 + 40)
    extra = st.one_of(st.none(), extra_values.map(_p), st.just(NULL))

    every_row = st.tuples(every_id, _columns_subset(EVERY_SQL_VALUES, 0, 5), extra)
    pairs_row = st.tuples(st.fixed_dictionaries({k: s.map(_p) for k, s in PAIRS_KEYS.items()}),
                          _columns_subset(PAIRS_SQL_VALUES, 0, 3), extra)  # fmt: skip
    return st.one_of(
        st.builds(lambda rows, verb: {"op": "insert", "table": EVERY, "rows": rows, "verb": verb},
                  st.lists(every_row, min_size=1, max_size=3), st.sampled_from(["INSERT", "REPLACE", "UPSERT"])),
        st.builds(lambda lo, width, sets, extra: {"op": "update", "table": EVERY, "lo": lo, "hi": lo + width,
                                                  "sets": sets, "extra": extra},
                  every_id, st.integers(0, 6), _columns_subset(EVERY_SQL_VALUES, 1, 4), extra),
        st.builds(lambda lo, width, delta: {"op": "move", "table": EVERY, "lo": lo, "hi": lo + width, "delta": delta},
                  every_id, st.integers(0, 3), st.integers(-30, 30).filter(bool)),
        st.builds(lambda lo, width: {"op": "delete", "table": EVERY, "lo": lo, "hi": lo + width},
                  every_id, st.integers(0, 4)),
        st.builds(lambda rows: {"op": "insert", "table": PAIRS, "rows": rows, "verb": "INSERT"},
                  st.lists(pairs_row, min_size=1, max_size=3)),
        st.builds(lambda code, sets, extra: {"op": "update", "table": PAIRS, "where": {"code": code},
                                             "sets": sets, "extra": extra},
                  PAIRS_KEYS["code"].map(_p), _columns_subset(PAIRS_SQL_VALUES, 1, 2), extra),
        st.builds(lambda code, n, key: {"op": "rekey", "table": PAIRS, "where": {"code": code, "n": n}, "sets": key},
                  PAIRS_KEYS["code"].map(_p), PAIRS_KEYS["n"].map(_p),
                  _columns_subset({k: s.map(_p) for k, s in PAIRS_KEYS.items()}, 1, 2)),
        st.builds(lambda code, region: {"op": "delete", "table": PAIRS, "where": {"code": code, "region": region}},
                  PAIRS_KEYS["code"].map(_p), PAIRS_KEYS["region"].map(_p)),
    )  # fmt: skip


@st.composite
def programs(draw):
    added = draw(st.sampled_from(range(len(ADDED))))
    op = _ops(ADDED[added][2])
    step = st.one_of(
        op, op, op,
        st.builds(lambda ops, commit: {"op": "txn", "ops": ops, "commit": commit},
                  st.lists(op, min_size=2, max_size=4), st.sampled_from([True, True, True, False])),
    )  # fmt: skip
    chunk_reads = (COPIES * 7 + CHUNK_ROWS - 1) // CHUNK_ROWS + 3  # every_t's and a few of pairs' ranges
    program = {
        "before": draw(st.lists(step, max_size=4)),
        "during": draw(st.dictionaries(st.integers(0, chunk_reads), st.lists(step, min_size=1, max_size=3), max_size=4)),
        "intervals": draw(st.lists(st.lists(step, max_size=6), min_size=2, max_size=3)),
    }
    # The ADD COLUMN goes at one random place: before the setup, at a chunk boundary of the full load,
    # or inside one of the intervals.
    places = [("before", None)] + [("during", k) for k in range(chunk_reads)] + [
        ("intervals", i) for i in range(len(program["intervals"]))
    ]
    where, index = draw(st.sampled_from(places))
    alter = {"op": "alter", "added": added}
    if where == "before":
        program["before"].insert(draw(st.integers(0, len(program["before"]))), alter)
    elif where == "during":
        ops = program["during"].setdefault(index, [])
        ops.insert(draw(st.integers(0, len(ops))), alter)
    else:
        ops = program["intervals"][index]
        ops.insert(draw(st.integers(0, len(ops))), alter)
    return program


class Dml:
    """Runs generated operations on the source (sql_mode '' so zero dates and clipped values go in as
    they would on a lenient production server). Statements the source refuses (duplicate keys) are
    skipped: the source stays the truth the replica is compared with."""

    def __init__(self, server, db: str):
        self.db = db
        self.conn = server.connect(autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
        self.added: dict[str, int] = {}  # table -> index into ADDED
        self.executed = 0

    def close(self) -> None:
        self.conn.close()

    def run(self, ops: list[dict]) -> None:
        for op in ops:
            if op["op"] == "txn":
                self.conn.begin()
                for inner in op["ops"]:
                    self._one(inner)
                self.conn.commit() if op["commit"] else self.conn.rollback()
            else:
                self._one(op)

    def _with_extra(self, table: str, values: dict, extra) -> dict:
        if extra is not None and table in self.added:
            return {**values, "extra": extra}
        return values

    def _execute(self, sql: str, params: list) -> None:
        with self.conn.cursor() as cur:
            try:
                cur.execute(sql, params)
                self.executed += 1
            except (pymysql.err.IntegrityError, pymysql.err.DataError):
                pass

    def _one(self, op: dict) -> None:
        table = f"`{self.db}`.`{op['table']}`"
        kind = op["op"]
        if kind == "alter":
            name, clause, _ = ADDED[op["added"]]
            self._execute(f"ALTER TABLE `{self.db}`.`{name}` {clause}", [])
            self.added[name] = op["added"]
        elif kind == "insert":
            rows = []
            for row in op["rows"]:
                if op["table"] == EVERY:
                    key, values, extra = row
                    values = {"id": _p(key), **self._with_extra(EVERY, values, extra)}
                else:
                    keys, values, extra = row
                    values = {**keys, **self._with_extra(PAIRS, values, extra)}
                rows.append(values)
            names = sorted(set().union(*rows))
            params: list = []
            tuples = []
            for row in rows:
                fragments = []
                for name in names:
                    fragment, values = row.get(name, ("DEFAULT", ()))
                    fragments.append(fragment)
                    params.extend(values)
                tuples.append("(" + ", ".join(fragments) + ")")
            columns = ", ".join(f"`{n}`" for n in names)
            verb = {"INSERT": "INSERT", "REPLACE": "REPLACE", "UPSERT": "INSERT"}[op["verb"]]
            sql = f"{verb} INTO {table} ({columns}) VALUES {', '.join(tuples)}"
            if op["verb"] == "UPSERT":
                updates = [n for n in names if n != "id"] or ["id"]
                sql += " ON DUPLICATE KEY UPDATE " + ", ".join(f"`{n}` = VALUES(`{n}`)" for n in updates)
            self._execute(sql, params)
        elif kind in ("update", "rekey"):
            sets = self._with_extra(op["table"], op["sets"], op.get("extra"))
            assignments = ", ".join(f"`{n}` = {fragment}" for n, (fragment, _) in sets.items())
            params = [v for _, values in sets.values() for v in values]
            where, where_params = self._where(op)
            self._execute(f"UPDATE {table} SET {assignments} WHERE {where}", params + where_params)
        elif kind == "move":  # primary-key change of a range; ORDER BY keeps the statement collision-free
            order = "DESC" if op["delta"] > 0 else "ASC"
            self._execute(
                f"UPDATE {table} SET id = id + %s WHERE id BETWEEN %s AND %s ORDER BY id {order}",
                [op["delta"], op["lo"], op["hi"]],
            )
        elif kind == "delete":
            where, params = self._where(op)
            self._execute(f"DELETE FROM {table} WHERE {where}", params)
        else:
            raise AssertionError(op)

    @staticmethod
    def _where(op: dict) -> tuple[str, list]:
        if "lo" in op:
            return "id BETWEEN %s AND %s", [op["lo"], op["hi"]]
        terms, params = [], []
        for name, (fragment, values) in op["where"].items():
            terms.append(f"`{name}` = {fragment}")
            params.extend(values)
        return " AND ".join(terms), params


def create_source(server, db: str) -> None:
    server.execute(f"CREATE DATABASE {db}")
    server.execute(f"CREATE TABLE {db}.{EVERY} ({', '.join(tv._COLUMNS)})", PAIRS_DDL.format(db=db))
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        for copy in range(COPIES):
            for row in FIXED_ROWS:
                row = {**row, "id": copy * 10 + row["id"]}
                sql = tv._insert_sql(row).replace(f"`{tv.DATABASE}`.`{tv.TABLE}`", f"`{db}`.`{EVERY}`")
                params = {"big_json": json.dumps(tv.BIG_JSON if copy == 0 else {"copy": copy}), "nested_json": tv.NESTED_JSON_TEXT}
                cur.execute(sql, params if "%(" in sql else None)
        codes = ["a", "b", "é", "c ", "ü😀", "x", "y"]
        cur.executemany(
            f"INSERT INTO {db}.{PAIRS} VALUES (%s, %s, %s, %s, %s, %s)",
            [(c, r, n, f"{c}{r}{n}", f"{n}.5", f"2020-01-0{1 + n % 9} 00:00:00.{n:06d}")
             for c in codes for r in ("cn", "us") for n in range(3)],
        )  # fmt: skip
    conn.close()


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=programs())
def test_random_dml_around_the_full_load_converges_value_for_value(connections, mysql_server, program):
    db = f"prop_{uuid.uuid4().hex[:8]}"
    create_source(mysql_server, db)
    spec = make_spec(connections, db, chunk_rows=CHUNK_ROWS, parallelism=1)
    dml = Dml(mysql_server, db)
    try:
        dml.run(program["before"])
        SchemaMigrateOperator(task_id="schema", spec=spec).execute({})

        # DURING the full load: operations at chunk boundaries (after C0 is recorded, between reads).
        reads = [0]
        original = FullLoader.read_range

        def read_range(self, plan, key_range):
            dml.run(program["during"].get(reads[0], []))
            reads[0] += 1
            return original(self, plan, key_range)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(FullLoader, "read_range", read_range)
            FullLoadOperator(task_id="full", spec=spec).execute({})
        for k in sorted(program["during"]):  # boundaries past the last chunk: right after the load
            if k >= reads[0]:
                dml.run(program["during"][k])

        for i, ops in enumerate(program["intervals"]):
            dml.run(ops)
            run_interval(spec, i)
        assert_replicas_match(spec)
    finally:
        dml.close()
        mysql_server.execute(f"DROP DATABASE {db}")
