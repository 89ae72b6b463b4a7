"""Incremental exactly-once, the hard way: random DML before, during and after the full load, across
several intervals, checked value for value against the source; a batch killed with SIGKILL mid-write and
between its partition commit and its bookkeeping; purged and reset binlogs; contiguous intervals.

Everything runs through the real operators against the private MariaDB (``mysql_server``) and the
MaxCompute emulator, like tests/integration/test_incremental.py.

The intervals are simulated hours from FIRST (in the real clock's past). Interval ends are time-true
(docs/interval-boundaries.md): so each test records the snapshot C0 "at" 1 s before FIRST and commits
every write meant for interval i "in" interval i, in a session whose clock is set there
(tests/integration/session_clock.py, test_incremental.inside).
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
from airflow_provider_polar_mc.core.binlog.reader import read_changes
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND, FullLoader
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.resync import TableResync
from airflow_provider_polar_mc.core.validate import _normalise
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration import test_values as tv
from tests.integration.session_clock import execute_at, snapshot_at
from tests.integration.test_incremental import (
    FIRST,
    inside,
    interval,
    partition_rows,
    replica_matches_source,
    run_interval,
)
from tests.waiting import wait_until

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


def snapshot_before_first(spec: dict, server) -> BinlogCoordinate:
    """Record C0 "at" 1 s before interval 0 (the full load, run next, keeps it)."""
    return snapshot_at(store_of(spec), server, FIRST.timestamp() - 1)


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

    def clock(self, moment: float) -> None:
        """From now on this session's statements (and commits) happen "at" ``moment`` (unix seconds)."""
        with self.conn.cursor() as cur:
            cur.execute("SET TIMESTAMP = %s", (moment,))

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
        kind = op["op"]
        table = f"`{self.db}`.`{op.get('table')}`"
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
    max_examples=6,
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
        snapshot_before_first(spec, mysql_server)

        # DURING the full load: operations at chunk boundaries (after C0 is recorded, between reads),
        # committed in interval 0.
        reads = [0]
        original = FullLoader.read_range

        def read_range(self, plan, key_range):
            dml.clock(inside(0, 5 + reads[0]))
            dml.run(program["during"].get(reads[0], []))
            reads[0] += 1
            return original(self, plan, key_range)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(FullLoader, "read_range", read_range)
            FullLoadOperator(task_id="full", spec=spec).execute({})
        for k in sorted(program["during"]):  # boundaries past the last chunk: right after the load
            if k >= reads[0]:
                dml.clock(inside(0, 5 + k))
                dml.run(program["during"][k])

        for i, ops in enumerate(program["intervals"]):
            dml.clock(inside(i, 1800))  # interval i's operations commit in interval i
            dml.run(ops)
            run_interval(spec, i)
        assert_replicas_match(spec)
    finally:
        dml.close()
        mysql_server.execute(f"DROP DATABASE {db}")


# =====================================================================================================
# 2. SIGKILL mid-batch, and between the partition commit and the bookkeeping; then retry
# =====================================================================================================

BIG_ROWS = 50_000

CHILD = """
import datetime as dt, json, os, sys, time
spec, mode, i = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog import reader
from airflow_provider_polar_mc.core.destination import upload
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
if mode == "mid_write":
    original, finish = upload.TableUpload.write_block, reader._Chunker.finish
    read_done = []
    def finish_and_note(self):
        read_done.append(True)
        finish(self)
    def write_block(self, block_id, data):
        if block_id == 3:  # killed in the middle of block 3's upload, while the binlog is still being read
            with self.session.open_arrow_writer(block_id) as writer:
                writer.write(data.to_batches(max_chunksize=1000)[0])
                print("MID_BLOCK", "read_done" if read_done else "reading", flush=True)
                time.sleep(600)
        original(self, block_id, data)
    upload.TableUpload.write_block = write_block
    reader._Chunker.finish = finish_and_note
elif mode == "before_mark_done":
    def mark_done(*args, **kwargs):
        print("COMMITTED", flush=True)
        os._exit(17)  # the partition is committed; the interval is not marked done
    intervals.mark_done = mark_done
first = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i)
IncrementalLoadOperator(task_id="load", spec=spec).execute(
    {"data_interval_start": first, "data_interval_end": first + dt.timedelta(hours=1)}
)
print("FINISHED", flush=True)
"""


def start_child(spec: dict, mode: str, i: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec), mode, str(i)],
        cwd=ROOT,
        env=os.environ.copy(),  # carries the AIRFLOW_CONN_* of the `connections` fixture
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return line
    proc.kill()
    raise AssertionError(f"no {marker!r} from the child (rc {proc.wait()}): {seen[-5:]} {proc.stderr.read()[-3000:]}")


def change_key(row) -> tuple:
    """(record_id, before_flag) of a `_log` row read through the Tunnel (record_id first, before_flag 4th)."""
    return (row[0], row[3])


def read_range_reference(spec: dict, i_start: int, i_end: int) -> dict[str, list[dict]]:
    """One uninterrupted read of the recorded binlog range from the start of interval ``i_start`` to the
    end of interval ``i_end``, by core/binlog/reader.py, with the schemas recorded at the snapshot."""
    migration = load_spec(spec)
    store = store_of(spec)
    start_moment = FIRST + dt.timedelta(hours=i_start)
    start = (
        BinlogCoordinate.from_dict(store.get(SNAPSHOT_KIND, SNAPSHOT_KEY))
        if i_start == 0
        else intervals.recorded_end(store, start_moment)
    )
    end = intervals.recorded_end(store, FIRST + dt.timedelta(hours=i_end + 1))
    if i_start == 0:
        schemas = {n: TableSchema.from_dict(v) for n, v in store.items("schema_c0").items()}
    else:
        schemas = {n: TableSchema.from_dict(v) for n, v in intervals.done(store, start_moment)["schemas"].items()}
    endpoint = resolve.source_endpoint(migration)
    conn = endpoint.connect()
    from airflow_provider_polar_mc.core.selection import select_tables
    from airflow_provider_polar_mc.core.source.catalog import list_tables

    selections = {s.source_name: s for s in select_tables(migration, {db: list_tables(conn, db) for db in migration.source.databases})}
    conn.close()
    changes = read_changes(endpoint, start, end, schemas, {n: selections[n] for n in schemas}, migration)
    return {name: c.rows.to_pylist() for name, c in changes.tables.items()}


def as_tuples(rows: list[dict]) -> list[tuple]:
    return [tuple(_normalise(v) for v in row.values()) for row in rows]


def normalised(rows: list[tuple], width: int) -> list[tuple]:
    """Tunnel rows cut to the ``_log`` data layout (the partition columns dropped), normalised."""
    return [tuple(_normalise(v) for v in row[:width]) for row in rows]


@pytest.fixture
def big(mysql_server):
    db = f"kill_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.big (id BIGINT PRIMARY KEY, v VARCHAR(24), n INT, d DECIMAL(20,6), t DATETIME(6))",
        f"INSERT INTO {db}.big VALUES " + ",".join(f"({i}, 'seed {i}', {i}, {i}.5, '2025-01-01')" for i in range(1, 501)),
    )
    yield db
    mysql_server.execute(f"DROP DATABASE {db}")


def bulk_changes(server, db: str, first_id: int, rows: int, *, at: float) -> None:
    """``rows`` inserts in multi-row statements, then updates (one a key change) and deletes, all
    committed "at" ``at`` (unix seconds: the interval they are meant for)."""
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET TIMESTAMP = %s", (at,))
        for lo in range(first_id, first_id + rows, 2000):
            hi = min(lo + 2000, first_id + rows)
            cur.execute(
                f"INSERT INTO {db}.big VALUES "
                + ",".join(f"({i}, 'v{i}', {i % 97}, {i}.125, '2026-01-01 00:00:00.{i % 999999:06d}')" for i in range(lo, hi))
            )
        cur.execute(f"UPDATE {db}.big SET v = CONCAT(v, '!'), n = n + 1 WHERE id BETWEEN %s AND %s", (first_id, first_id + 999))
        cur.execute(f"UPDATE {db}.big SET id = id + 10000000 WHERE id BETWEEN 1 AND 50 ORDER BY id DESC")
        cur.execute(f"DELETE FROM {db}.big WHERE id BETWEEN %s AND %s", (first_id + 1000, first_id + 1999))
    conn.close()


def test_kill_9_mid_incremental_batch_then_retry(connections, mysql_server, emulator, big):
    spec = make_spec(connections, big, block_rows=5_000)
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    snapshot_before_first(spec, mysql_server)
    FullLoadOperator(task_id="full", spec=spec).execute({})
    bulk_changes(mysql_server, big, 1_000_000, BIG_ROWS, at=inside(0, 10))
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(0))
    execute_at(mysql_server, inside(1, 5), f"INSERT INTO {big}.big (id, v) VALUES (99999999, 'after C(0)')")  # must not be in 0
    log_table = f"{spec['batch_rename']['prefix']}big_log"
    table = emulator.client().get_table(log_table)

    # SIGKILL in the middle of uploading block 3 of >10 (others written, none committed), while the batch
    # is still reading the binlog: decoding and upload overlap (at most 3 blocks in flight), so the
    # reader cannot have reached the end of the range when block 3 starts.
    child = start_child(spec, "mid_write", 0)
    line = wait_for_line(child, "MID_BLOCK")
    assert line.split()[1] == "reading", line
    child.send_signal(signal.SIGKILL)
    assert child.wait(30) == -signal.SIGKILL
    assert not table.exist_partition(hour_partition(0)) or partition_rows(emulator, log_table, hour_partition(0)) == []
    assert intervals.done(store_of(spec), FIRST + dt.timedelta(hours=1)) is None

    # The retry (in-process) writes every change of the range exactly once ...
    IncrementalLoadOperator(task_id="load", spec=spec).execute(interval(0))
    after_retry = partition_rows(emulator, log_table, hour_partition(0))
    keys = [change_key(r) for r in after_retry]
    assert len(keys) == len(set(keys)), "a (record_id, before_flag) pair appears twice"
    reference = read_range_reference(spec, 0, 0)[f"{big}.big"]
    assert len(after_retry) == len(reference) == BIG_ROWS + 2 * 1000 + 2 * 50 + 1000
    assert sorted(normalised(after_retry, len(reference[0]))) == sorted(as_tuples(reference))  # the same range re-read: identical rows
    ids = [r[0] for r in after_retry]
    assert ids == sorted(ids)
    assert 99999999 not in {r[5] for r in after_retry}
    # ... and an uninterrupted re-run rebuilds the identical partition.
    IncrementalLoadOperator(task_id="load", spec=spec).execute(interval(0))
    assert partition_rows(emulator, log_table, hour_partition(0)) == after_retry
    MergeOperator(task_id="merge", spec=spec).execute(interval(0))

    # Interval 1: the child dies between the partition commit and marking the interval done.
    bulk_changes(mysql_server, big, 2_000_000, 10_000, at=inside(1, 10))
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(1))
    child = start_child(spec, "before_mark_done", 1)
    wait_for_line(child, "COMMITTED")
    assert child.wait(60) == 17
    committed = partition_rows(emulator, log_table, hour_partition(1))
    assert len(committed) == 10_000 + 2 * 1000 + 1000 + 1  # ids 1-50 moved already; + the insert after C(0)
    assert intervals.done(store_of(spec), FIRST + dt.timedelta(hours=2)) is None
    IncrementalLoadOperator(task_id="load", spec=spec).execute(interval(1))
    assert partition_rows(emulator, log_table, hour_partition(1)) == committed
    assert partition_rows(emulator, log_table, hour_partition(0)) == after_retry
    assert intervals.done(store_of(spec), FIRST + dt.timedelta(hours=2)) is not None
    MergeOperator(task_id="merge", spec=spec).execute(interval(1))
    assert_replicas_match(spec)


# =====================================================================================================
# 3. Purged and reset binlogs: a clear failure, nothing written
# =====================================================================================================


def _setup_private(connections, server, rows: int = 50) -> tuple[dict, str]:
    connections.set_source(server)
    db = f"gone_{uuid.uuid4().hex[:8]}"
    server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200))",
        f"INSERT INTO {db}.t VALUES " + ",".join(f"({i}, REPEAT('x', 150))" for i in range(rows)),
    )
    spec = make_spec(connections, db)
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    snapshot_before_first(spec, server)
    FullLoadOperator(task_id="full", spec=spec).execute({})
    execute_at(server, inside(0, 10), *[f"UPDATE {db}.t SET v = 'interval 0 {i}' WHERE id = {i}" for i in range(20)])
    run_interval(spec, 0)
    assert_replicas_match(spec)
    return spec, db


def test_purged_binlog_fails_clearly_and_leaves_partitions_untouched(connections, emulator, mysql_server_factory):
    server = mysql_server_factory(max_binlog_size=4096)
    spec, db = _setup_private(connections, server)
    log_table = f"{spec['batch_rename']['prefix']}t_log"
    before0 = partition_rows(emulator, log_table, hour_partition(0))
    c0_end = intervals.recorded_end(store_of(spec), FIRST + dt.timedelta(hours=1))

    # Interval 1's writes, and its end captured (the sensor scans the binlog from C(0)), while the binlog
    # is still there; then the binlog from C(0) on is purged before the batch reads it (a late batch).
    execute_at(server, inside(1, 10), *[f"INSERT INTO {db}.t VALUES ({100 + i}, REPEAT('y', 150))" for i in range(60)])
    c1_end = BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(1))
    server.execute("FLUSH BINARY LOGS")
    newest = server.execute("SHOW MASTER STATUS")[0][0]
    assert newest != c0_end.log_file and newest != c1_end["log_file"]
    assert c0_end.log_file not in server.purge_binary_logs_to(newest)  # waits for MariaDB's deferred purge
    with pytest.raises(AirflowFailException) as caught:
        IncrementalLoadOperator(task_id="load", spec=spec).execute(interval(1))
    message = str(caught.value)
    assert c0_end.log_file in message and "re-run the setup" in message, message
    # The next interval's end, captured after the purge, fails as clearly: its scan starts at C(1).
    with pytest.raises(AirflowFailException) as caught:
        BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(2))
    message = str(caught.value)
    assert c1_end["log_file"] in message and "re-run the setup" in message, message
    assert intervals.recorded_end(store_of(spec), FIRST + dt.timedelta(hours=3)) is None
    table = emulator.client().get_table(log_table)
    assert partition_rows(emulator, log_table, hour_partition(0)) == before0
    assert not table.exist_partition(hour_partition(1))


@pytest.mark.parametrize("writes_after_reset", [0, 400], ids=["idle", "busier-than-before"])
def test_reset_master_is_not_read_as_no_changes(connections, emulator, mysql_server_factory, writes_after_reset):
    server = mysql_server_factory()
    spec, db = _setup_private(connections, server)
    log_table = f"{spec['batch_rename']['prefix']}t_log"
    before0 = partition_rows(emulator, log_table, hour_partition(0))
    c0_end = intervals.recorded_end(store_of(spec), FIRST + dt.timedelta(hours=1))

    # Interval 1's writes, and its end captured (the sensor scans the binlog from C(0)), before the reset;
    # the batch reads the range after it (a late batch).
    execute_at(server, inside(1, 10), *[f"UPDATE {db}.t SET v = 'interval 1 {i}' WHERE id = {i}" for i in range(20, 30)])
    end = BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(1))
    assert (end["log_file"], end["log_pos"]) > (c0_end.log_file, c0_end.log_pos)
    server.execute("RESET MASTER")
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET TIMESTAMP = %s", (inside(2, 10),))  # after C(1): the next interval's writes
        for i in range(writes_after_reset):  # enough transactions to carry the position and GTID past C(1)
            cur.execute(f"INSERT INTO {db}.t VALUES ({1000 + i}, REPEAT('z', 150))")
    conn.close()
    if writes_after_reset:
        now = server.execute("SHOW MASTER STATUS")[0]
        assert (now[0], now[1]) > (end["log_file"], end["log_pos"])  # "looks like" a continuation of (C(0), C(1)]
    with pytest.raises(AirflowFailException) as caught:
        IncrementalLoadOperator(task_id="load", spec=spec).execute(interval(1))
    message = str(caught.value)
    assert "reset" in message.lower() and "re-run the setup" in message, message
    # The next interval's end, captured after the reset, fails as clearly: its scan starts at C(1).
    with pytest.raises(AirflowFailException) as caught:
        BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(2))
    message = str(caught.value)
    assert "reset" in message.lower() and "re-run the setup" in message, message
    assert intervals.recorded_end(store_of(spec), FIRST + dt.timedelta(hours=3)) is None
    table = emulator.client().get_table(log_table)
    assert partition_rows(emulator, log_table, hour_partition(0)) == before0
    assert not table.exist_partition(hour_partition(1))


# =====================================================================================================
# 4. Consecutive intervals are contiguous: every change in exactly one partition
# =====================================================================================================


def test_intervals_are_contiguous_and_each_change_lands_in_exactly_one_partition(connections, mysql_server, emulator, big):
    spec = make_spec(connections, big, block_rows=1000)
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    snapshot_before_first(spec, mysql_server)
    stop = threading.Event()
    writes = [0]
    phase = [0]  # the simulated interval the writer's rounds commit in

    def writer() -> None:  # keeps writing while the sensors capture the interval ends
        conn = mysql_server.connect()
        i = 0
        with conn.cursor() as cur:
            while not stop.is_set():
                i += 1
                cur.execute("SET TIMESTAMP = %s", (inside(phase[0], 5 + i / 1000),))  # the whole round "in" phase[0]
                cur.execute(f"INSERT INTO {big}.big (id, v, n) VALUES (%s, 'w', %s), (%s, 'w2', %s)", (5_000_000 + 2 * i, i, 5_000_001 + 2 * i, i))
                cur.execute(f"UPDATE {big}.big SET n = n + 1 WHERE id = %s", (1 + i % 500,))
                if i % 3 == 0:
                    cur.execute(f"DELETE FROM {big}.big WHERE id = %s", (5_000_000 + 2 * (i - 1),))
                if i % 7 == 0:  # a key change
                    cur.execute(f"UPDATE {big}.big SET id = id + 100000000 WHERE id = %s", (5_000_001 + 2 * (i - 1),))
                writes[0] = i
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        FullLoadOperator(task_id="full", spec=spec).execute({})
        for i in range(3):
            # Changes in every interval: a few more writer rounds committed in interval i ...
            before = writes[0]
            wait_until(lambda before=before: writes[0] >= before + 3 or not thread.is_alive(),
                       what=f"three more writer rounds in interval {i}")  # fmt: skip
            # ... then the writer moves on to interval i + 1 and keeps writing while interval i's end is
            # captured. (The round in flight when it moved on still commits "in" interval i, before the
            # first round of interval i + 1, where C(i) is then found in the binlog.)
            phase[0] = i + 1
            before = writes[0]
            wait_until(lambda before=before: writes[0] >= before + 2 or not thread.is_alive(),
                       what=f"writer rounds in interval {i + 1}")  # fmt: skip
            assert thread.is_alive(), "the writer thread died"
            run_interval(spec, i)
    finally:
        stop.set()
        thread.join()

    assert writes[0] > 10, "the writer thread died"
    log_table = f"{spec['batch_rename']['prefix']}big_log"
    partitions = [partition_rows(emulator, log_table, hour_partition(i)) for i in range(3)]
    assert all(partitions), [len(p) for p in partitions]
    union = [row for rows in partitions for row in rows]
    keys = [change_key(r) for r in union]
    assert len(keys) == len(set(keys)), "a change landed in two partitions (or twice in one)"
    ids = [r[0] for r in union]
    assert ids == sorted(ids)  # record_ids increase across the partitions in interval order
    reference = read_range_reference(spec, 0, 2)[f"{big}.big"]
    assert normalised(union, len(reference[0])) == as_tuples(reference)  # the union is one read of (C0, C(2)]
    run_interval(spec, 3)  # quiescent now: the replica catches up exactly
    assert_replicas_match(spec)


# =====================================================================================================
# ADD COLUMN with a DEFAULT (or NOT NULL): existing rows change without row events; the merge fills them
# =====================================================================================================


def set_up(connections, server, db: str) -> dict:
    """Schema migration and full load of ``db`` (every table), C0 "at" 1 s before interval 0."""
    spec = make_spec(connections, db)
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    snapshot_before_first(spec, server)
    FullLoadOperator(task_id="full", spec=spec).execute({})
    return spec


def test_add_column_with_defaults_is_followed_and_the_replica_shows_them(connections, mysql_server, big):
    """The most common DDL: columns whose existing rows get a value no row event carries (a constant
    DEFAULT, NOT NULL's implicit default). `_base` and `_log` get the columns (older rows NULL, as DTS);
    the replica shows every row as the source does: the DDL's value where the row's latest change is
    older than the DDL, in this interval (rows changed before and after it) and the next ones."""
    spec = set_up(connections, mysql_server, big)
    execute_at(mysql_server, inside(0, 5), f"UPDATE {big}.big SET v = 'before the DDL' WHERE id <= 20")
    execute_at(mysql_server, inside(0, 10),
               f"ALTER TABLE {big}.big ADD COLUMN flag INT NOT NULL DEFAULT 7, "
               "ADD COLUMN label VARCHAR(12) NOT NULL DEFAULT 'it''s' AFTER id, "
               "ADD COLUMN since DATE DEFAULT '2026-11-30', ADD COLUMN kind ENUM('x', 'y') NOT NULL, "
               "ADD COLUMN amount DECIMAL(8,3) NOT NULL FIRST, ADD COLUMN never DATE NOT NULL, "
               "ADD COLUMN ratio DOUBLE DEFAULT -1.5, ADD COLUMN note TEXT")  # fmt: skip
    execute_at(mysql_server, inside(0, 20), f"UPDATE {big}.big SET flag = 1, kind = 'y' WHERE id BETWEEN 10 AND 30")
    execute_at(mysql_server, inside(0, 30), f"INSERT INTO {big}.big (id, v, amount, never) VALUES (1001, 'after the DDL', 2.5, '2026-01-02')")
    execute_at(mysql_server, inside(0, 40), f"DELETE FROM {big}.big WHERE id = 40")
    summary = run_interval(spec, 0)
    assert summary["tables"][f"{big}.big"]["rows"] > 0, summary
    assert_replicas_match(spec)
    # The next interval starts from the replica, whose rows hold the values now: nothing is filled twice.
    execute_at(mysql_server, inside(1, 10), f"UPDATE {big}.big SET label = 'later', since = NULL WHERE id > 490")
    run_interval(spec, 1)
    assert_replicas_match(spec)
    # _base keeps NULL in the new columns (DTS): the replica alone shows the DDL's values.
    migration = load_spec(spec)
    base = f"{spec['batch_rename']['prefix']}big_base"
    [(filled,)] = resolve.destination(migration).query(f"SELECT COUNT(*) FROM {base} WHERE flag IS NOT NULL")
    assert filled == 0


def test_columns_dropped_renamed_and_redefined_then_the_table_truncated(connections, mysql_server, big):
    """One table through the column DDL a batch follows, each interval checked value for value:
    DROP COLUMN (the MaxCompute column stays: rows changed after it NULL there, the others keep their
    value), RENAME COLUMN and CHANGE (one MaxCompute column under its original name, also when an interval
    before the renames is run again), MODIFY widening (later rows with the new definition), TRUNCATE
    (the replica empty from that change on), and a MODIFY that would change the MaxCompute type (the
    batch fails naming why)."""
    spec = set_up(connections, mysql_server, big)
    replica = f"{spec['batch_rename']['prefix']}big"
    query = resolve.destination(load_spec(spec)).query
    execute_at(mysql_server, inside(0, 5), f"UPDATE {big}.big SET n = -1, v = 'before' WHERE id <= 5")
    execute_at(mysql_server, inside(0, 10), f"ALTER TABLE {big}.big DROP COLUMN n")
    execute_at(mysql_server, inside(0, 20), f"UPDATE {big}.big SET v = 'after' WHERE id BETWEEN 3 AND 8")
    execute_at(mysql_server, inside(0, 30), f"ALTER TABLE {big}.big RENAME COLUMN v TO label")
    execute_at(mysql_server, inside(0, 40), f"UPDATE {big}.big SET label = 'renamed' WHERE id BETWEEN 8 AND 9")
    run_interval(spec, 0)
    assert_replicas_match(spec)
    rows = {i: (n, v) for i, n, v in query(f"SELECT id, n, v FROM {replica} WHERE id <= 10")}
    assert rows == {1: (-1, "before"), 2: (-1, "before"), 3: (None, "after"), 4: (None, "after"), 5: (None, "after"),
                    6: (None, "after"), 7: (None, "after"), 8: (None, "renamed"), 9: (None, "renamed"),
                    10: (10, "seed 10")}  # fmt: skip
    execute_at(mysql_server, inside(1, 10), f"ALTER TABLE {big}.big CHANGE COLUMN label title VARCHAR(200)")
    execute_at(mysql_server, inside(1, 20), f"UPDATE {big}.big SET title = REPEAT('w', 150) WHERE id <= 2",
               f"INSERT INTO {big}.big (id, title) VALUES (1001, 'renamed twice')")
    run_interval(spec, 1)
    assert_replicas_match(spec)
    run_interval(spec, 0)  # a re-run of the interval before the renames: the same columns
    assert_replicas_match(spec)
    execute_at(mysql_server, inside(2, 5), f"UPDATE {big}.big SET title = 'gone' WHERE id <= 20")
    execute_at(mysql_server, inside(2, 10), f"TRUNCATE TABLE {big}.big")
    execute_at(mysql_server, inside(2, 20), f"INSERT INTO {big}.big (id, title) VALUES (7, 'after'), (8, 'after')",
               f"UPDATE {big}.big SET d = 3 WHERE id = 8")
    run_interval(spec, 2)
    assert_replicas_match(spec)
    assert sorted(query(f"SELECT id FROM {replica}")) == [(7,), (8,)]
    # A MODIFY that changes the MaxCompute type (a narrower DECIMAL): the table stops there for a resync
    # (or, with unfollowable: fail, the batch fails naming why); the wider MaxCompute columns take it.
    execute_at(mysql_server, inside(3, 10), f"ALTER TABLE {big}.big MODIFY d DECIMAL(12,6)")
    failing = {**spec, "schema_changes": {"unfollowable": "fail"}}
    with pytest.raises(AirflowFailException, match=r"(?i)changes the MaxCompute type"):
        run_interval(failing, 3)
    execute_at(mysql_server, inside(3, 20), f"UPDATE {big}.big SET d = 123456.5 WHERE id = 7")
    summary = run_interval(spec, 3)
    assert summary["resync_requested"] == [f"{big}.big"]
    migration = load_spec(spec)
    TableResync(migration, resolve.source_endpoint(migration), resolve.destination(migration), store_of(spec)).run([f"{big}.big"])
    execute_at(mysql_server, inside(4, 10), f"UPDATE {big}.big SET d = -1 WHERE id = 8")
    run_interval(spec, 4)
    assert_replicas_match(spec)


@pytest.mark.parametrize(("statement", "reason"), [
    ("DROP TABLE {db}.other", "DROP TABLE"),
    ("RENAME TABLE {db}.other TO {db}.other_old", "RENAME TABLE to {db}.other_old"),
])  # fmt: skip
def test_a_dropped_or_renamed_table_stops_and_the_others_go_on(connections, mysql_server, big, statement, reason):
    """The table's changes up to the DDL are migrated (also when the batch runs after it is gone), its
    replica keeps that state, the batch reports it, and the other tables go on."""
    mysql_server.execute(f"CREATE TABLE {big}.other (id INT PRIMARY KEY, v INT)",
                         f"INSERT INTO {big}.other VALUES (1, 1), (2, 2), (3, 3)")
    spec = set_up(connections, mysql_server, big)
    execute_at(mysql_server, inside(0, 5), f"UPDATE {big}.other SET v = 20 WHERE id = 2", f"DELETE FROM {big}.other WHERE id = 3")
    execute_at(mysql_server, inside(0, 10), statement.format(db=big))
    execute_at(mysql_server, inside(0, 20), f"UPDATE {big}.big SET v = 'after' WHERE id <= 3")
    summary = run_interval(spec, 0)
    assert summary["stopped"] == {f"{big}.other": reason.format(db=big)}
    assert_replicas_match(spec)  # big (other is gone from the source, or no longer under its name)
    replica = f"{spec['batch_rename']['prefix']}other"
    assert sorted(resolve.destination(load_spec(spec)).query(f"SELECT id, v FROM {replica}")) == [(1, 1), (2, 20)]
    if "RENAME" in statement:  # changes under the new name are not migrated into the old table's replica
        execute_at(mysql_server, inside(1, 5), f"UPDATE {big}.other_old SET v = 99")
    execute_at(mysql_server, inside(1, 10), f"UPDATE {big}.big SET n = 0 WHERE id <= 3")
    summary = run_interval(spec, 1)
    assert summary["stopped"] == {f"{big}.other": reason.format(db=big)}
    assert_replicas_match(spec)
    assert sorted(resolve.destination(load_spec(spec)).query(f"SELECT id, v FROM {replica}")) == [(1, 1), (2, 20)]


def test_a_table_created_in_a_migrated_database_is_migrated_from_its_first_event(connections, mysql_server, big):
    """`tables: all`: CREATE TABLE of a new table creates its `_base` (empty) and `_log` and migrates it
    from there; CREATE ... SELECT (rows no row event carries) is not followed and nothing else stops."""
    spec = set_up(connections, mysql_server, big)
    execute_at(mysql_server, inside(0, 10), f"CREATE TABLE {big}.fresh (id INT NOT NULL, code VARCHAR(8) NOT NULL, "
               "note TEXT, amount DECIMAL(8,2) DEFAULT 1.00, PRIMARY KEY (id, code), KEY (note(4))) DEFAULT CHARSET=utf8mb4")
    execute_at(mysql_server, inside(0, 20), f"INSERT INTO {big}.fresh (id, code, note) VALUES (1, 'a', 'x'), (2, 'b', NULL)")
    execute_at(mysql_server, inside(0, 30), f"UPDATE {big}.fresh SET amount = 9.5 WHERE id = 2")
    execute_at(mysql_server, inside(0, 35), f"CREATE TABLE {big}.copied AS SELECT id, v FROM {big}.big WHERE id < 5")
    execute_at(mysql_server, inside(0, 40), f"UPDATE {big}.big SET v = 'still going' WHERE id = 1")
    run_interval(spec, 0)
    execute_at(mysql_server, inside(1, 10), f"INSERT INTO {big}.fresh (id, code) VALUES (3, 'c')",
               f"DELETE FROM {big}.fresh WHERE id = 1")
    run_interval(spec, 1)
    results = {r.source: r for r in replica_matches_source(spec)}
    assert set(results) == {f"{big}.big", f"{big}.fresh"}  # copied: not followed (no full load of it)
    assert all(r.equal for r in results.values()), [r.summary() for r in results.values()]
    replica = f"{spec['batch_rename']['prefix']}fresh"
    assert sorted(resolve.destination(load_spec(spec)).query(f"SELECT id, code FROM {replica}")) == [(2, "b"), (3, "c")]


# =====================================================================================================
# Resync: a change no row event lets the batch follow stops that table; a resync loads its _base again
# at a new coordinate while the other table's changes keep arriving; both replicas equal their sources
# =====================================================================================================


def test_a_table_resynced_after_an_unfollowable_change_while_the_other_table_goes_on(
    tmp_path, monkeypatch, airflow_db, connections, mysql_server, big
):
    import yaml

    from airflow_provider_polar_mc.core.resync import RESYNC_KIND, requested_resyncs
    from airflow_provider_polar_mc.dag_factory import resync_dag

    mysql_server.execute(f"CREATE TABLE {big}.other (id INT PRIMARY KEY, v INT, w VARCHAR(8))",
                         f"INSERT INTO {big}.other VALUES " + ",".join(f"({i}, {i}, 'w{i}')" for i in range(1, 201)))
    spec = set_up(connections, mysql_server, big)
    execute_at(mysql_server, inside(0, 5), f"UPDATE {big}.other SET v = -v WHERE id <= 10", f"UPDATE {big}.big SET n = 1 WHERE id <= 10")
    # INT -> SMALLINT narrows the MaxCompute type, and an AUTO_INCREMENT column gets values no row event
    # carries: the batch follows neither.
    execute_at(mysql_server, inside(0, 10), f"ALTER TABLE {big}.other MODIFY v SMALLINT, ADD COLUMN z INT AUTO_INCREMENT UNIQUE")
    execute_at(mysql_server, inside(0, 20), f"UPDATE {big}.other SET w = 'after' WHERE id BETWEEN 11 AND 20",
               f"DELETE FROM {big}.big WHERE id = 11")
    summary = run_interval(spec, 0)
    assert summary["resync_requested"] == [f"{big}.other"] and "resync needed" in summary["stopped"][f"{big}.other"]
    assert requested_resyncs(store_of(spec)) == [f"{big}.other"]

    # The resync DAG runs (as the incremental DAG's start_resync triggers it: no tables given, the
    # requested ones) while both tables keep changing, in interval 1.
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("AIRFLOW__POLAR_MC__SPEC_DIR", str(tmp_path))  # DAG.test() finds the spec through the DAG file
    migration = load_spec(str(path))

    def keep_writing() -> None:
        for k in range(6):
            execute_at(mysql_server, inside(1, 5 + k), f"UPDATE {big}.other SET v = {k}, w = 'k{k}' WHERE id % 7 = {k}",
                       f"INSERT INTO {big}.other (id, v, w) VALUES ({1000 + k}, {k}, 'new')",
                       f"UPDATE {big}.big SET v = 'during {k}' WHERE id % 5 = {k % 5}")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    run = resync_dag(path, migration).test(run_conf={"tables": []})
    writer.join(timeout=120)
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    done = [ti.xcom_pull(task_ids="resync") for ti in run.get_task_instances()][0]
    assert done and done[0]["generation"] == 1
    assert store_of(spec).get(RESYNC_KIND, f"{big}.other")["status"] == "done"
    execute_at(mysql_server, inside(1, 40), f"DELETE FROM {big}.other WHERE id = 1", f"DELETE FROM {big}.big WHERE id = 12")
    summary = run_interval(spec, 1)
    assert "stopped" not in summary and summary["tables"][f"{big}.other"]["rows"] > 0
    assert_replicas_match(spec)  # both tables, the resynced one in its new schema
    execute_at(mysql_server, inside(2, 10), f"UPDATE {big}.other SET v = 7 WHERE id = 2", f"UPDATE {big}.big SET n = 2")
    run_interval(spec, 2)
    assert_replicas_match(spec)


def test_an_online_schema_change_cut_over_is_resynced_and_the_replica_follows_the_new_table(connections, mysql_server, big):
    """pt-online-schema-change / gh-ost: a shadow table with the new definition is filled and renamed onto
    the migrated name. Its rows were never read from the binlog, so the table stops at the cut-over for a
    resync, which loads the new table; the other table goes on throughout."""
    mysql_server.execute(f"CREATE TABLE {big}.other (id INT PRIMARY KEY, v INT)",
                         f"INSERT INTO {big}.other VALUES " + ",".join(f"({i}, {i})" for i in range(1, 51)))
    spec = set_up(connections, mysql_server, big)
    execute_at(mysql_server, inside(0, 5), f"CREATE TABLE {big}._other_new LIKE {big}.other",
               f"ALTER TABLE {big}._other_new ADD COLUMN note VARCHAR(10) NOT NULL DEFAULT 'osc', MODIFY v BIGINT",
               f"INSERT INTO {big}._other_new (id, v) SELECT id, v * 1000000000 FROM {big}.other",
               f"UPDATE {big}.big SET n = -1 WHERE id <= 5")
    execute_at(mysql_server, inside(0, 10), f"RENAME TABLE {big}.other TO {big}._other_old, {big}._other_new TO {big}.other",
               f"DROP TABLE {big}._other_old")
    execute_at(mysql_server, inside(0, 20), f"UPDATE {big}.other SET note = 'after' WHERE id = 3")
    summary = run_interval(spec, 0)
    assert summary["resync_requested"] == [f"{big}.other"], summary
    migration = load_spec(spec)
    TableResync(migration, resolve.source_endpoint(migration), resolve.destination(migration), store_of(spec)).run([f"{big}.other"])
    execute_at(mysql_server, inside(1, 10), f"UPDATE {big}.other SET v = 5000000000 WHERE id = 4", f"DELETE FROM {big}.big WHERE id = 6")
    run_interval(spec, 1)
    assert_replicas_match(spec)
