"""The columnar row-image decoder (core/binlog/rows_decoder.py ``columnar_decoder``) against the library.

Every rows event of real private-server binlogs is decoded twice: by the columnar decoder
(``ImageColumns.to_arrow``) and by mysql-replication itself (``event.rows``, converted with
``values.convert_binlog_values``). Per destination column both must give the same Arrow array (type and
elements) and the same warnings, per event and over all events of a read in one buffer.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pyarrow as pa
import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from airflow_provider_polar_mc.core.binlog import rows_decoder
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.binlog.rows_decoder import columnar_decoder, table_decoder
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate, ColumnPlan
from airflow_provider_polar_mc.core.schema_plan import source_column_type
from airflow_provider_polar_mc.core.source.catalog import describe_tables
from airflow_provider_polar_mc.core.typemap import MappingOptions, map_type
from airflow_provider_polar_mc.core.values import (
    ZERO_DATE,
    convert_binlog_values,
    convert_snapshot_array,
)

pytestmark = pytest.mark.integration

FSPS = range(7)
ENUM300 = [f"m{i}" for i in range(300)]  # more than 255 members: stored in 2 bytes
SET64 = [f"s{i}" for i in range(64)]  # 64 members: stored in 8 bytes
D38_MAX = "99999999999999999999.999999999999999999"
D65_MAX = "12345678901234567890123456789012345.123456789012345678901234567891"


def _members(values: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# 63 columns: an 8-byte null bitmap.
EVERY_TYPE = [
    "id INT NOT NULL PRIMARY KEY",
    "ti TINYINT", "tiu TINYINT UNSIGNED", "si SMALLINT", "siu SMALLINT UNSIGNED", "mi MEDIUMINT",
    "miu MEDIUMINT UNSIGNED", "i INT", "iu INT UNSIGNED", "bi BIGINT", "biu BIGINT UNSIGNED",
    "f FLOAT", "dbl DOUBLE",
    "d12 DECIMAL(12,2)", "d18 DECIMAL(18,1)", "d189 DECIMAL(18,9)", "d9 DECIMAL(9,0)", "d5 DECIMAL(5,5)",
    "d104 DECIMAL(10,4)", "d1 DECIMAL(1,0)", "d38 DECIMAL(38,18)", "d65 DECIMAL(65,30)", "d20 DECIMAL(20,0)",
    "ch CHAR(5)", "vc VARCHAR(300)", "vs VARCHAR(20)", "l1 VARCHAR(10) CHARACTER SET latin1",
    "lch CHAR(6) CHARACTER SET latin1", "a1 VARCHAR(10) CHARACTER SET ascii", "u3 VARCHAR(10) CHARACTER SET utf8mb3",
    "tt TINYTEXT", "tx TEXT", "mt MEDIUMTEXT", "lt LONGTEXT",
    "tb TINYBLOB", "bl BLOB", "mb MEDIUMBLOB", "lb LONGBLOB", "vb VARBINARY(10)", "bn BINARY(4)",
    "chb CHAR(4) CHARACTER SET binary", "vcb VARCHAR(10) CHARACTER SET binary",
    "dte DATE", "y YEAR",
    "e ENUM('a','b','it''s')", f"e300 ENUM({_members(ENUM300)})",
    "s SET('x','y','z')", "s_nn SET('x','y','z') NOT NULL DEFAULT ''", f"s64 SET({_members(SET64)})",
    *[f"dt{p} DATETIME({p})" for p in FSPS],
    *[f"ts{p} TIMESTAMP({p}) NULL DEFAULT NULL" for p in FSPS],
    "j JSON",
]  # fmt: skip


def _fraction(text: str, p: int) -> str:
    return text[: p + 1] if p else ""


FIXED_ROWS: list[dict[str, str]] = [
    {  # maxima
        "id": "1", "ti": "127", "tiu": "255", "si": "32767", "siu": "65535", "mi": "8388607", "miu": "16777215",
        "i": "2147483647", "iu": "4294967295", "bi": str(2**63 - 1), "biu": str(2**64 - 1),
        "f": "3.4028234e38", "dbl": "1.7976931348623157e308",
        "d12": "9999999999.99", "d18": "99999999999999999.9", "d189": "999999999.999999999", "d9": "999999999",
        "d5": "0.99999", "d104": "999999.9999", "d1": "9", "d38": D38_MAX, "d65": D65_MAX,
        "d20": "99999999999999999999",
        "ch": "'abcde'", "vc": "REPEAT('é', 300)", "vs": "REPEAT('😀', 20)", "l1": "'çàÿ€ x'", "lch": "'ab  '",
        "a1": "'ascii~'", "u3": "'ü中'", "tt": "'tiny'", "tx": "REPEAT('t', 1000)", "mt": "REPEAT('m', 70000)",
        "lt": "'long😀'", "tb": "0x00ff", "bl": "0x00ff00", "mb": "0x01", "lb": "0x02", "vb": "0x0000",
        "bn": "'ab'", "chb": "'a'", "vcb": "0xff00", "dte": "'9999-12-31'", "y": "2155", "e": "'it''s'",
        "e300": "'m299'", "s": "'z,x'", "s_nn": "'y'", "s64": f"'{','.join(SET64)}'",
        **{f"dt{p}": f"'9999-12-31 23:59:59{_fraction('.999999', p)}'" for p in FSPS},
        **{f"ts{p}": f"'2038-01-19 03:14:07{_fraction('.999999', p)}'" for p in FSPS},
        "j": "'{\"a\": [1, 2.5, \"x\"], \"b\": null}'",
    },
    {  # minima, negatives, empty values
        "id": "2", "ti": "-128", "tiu": "0", "si": "-32768", "siu": "0", "mi": "-8388608", "miu": "0",
        "i": "-2147483648", "iu": "0", "bi": str(-(2**63)), "biu": "0",
        "f": "-3.4028234e38", "dbl": "-1.7976931348623157e308",
        "d12": "-9999999999.99", "d18": "-99999999999999999.9", "d189": "-999999999.999999999", "d9": "-999999999",
        "d5": "-0.99999", "d104": "-0.0001", "d1": "-9", "d38": "-" + D38_MAX, "d65": "-" + D65_MAX, "d20": "0",
        "ch": "''", "vc": "''", "vs": "''", "l1": "''", "lch": "''", "a1": "''", "u3": "''", "tt": "''", "tx": "''",
        "mt": "''", "lt": "''", "tb": "''", "bl": "0x00", "mb": "''", "lb": "''", "vb": "''", "bn": "0x00",
        "chb": "''", "vcb": "''", "dte": "'1000-01-01'", "y": "1901", "e": "'a'", "e300": "'m0'", "s": "''",
        "s_nn": "''", "s64": "''",
        **{f"dt{p}": "'1000-01-01 00:00:00'" for p in FSPS},
        **{f"ts{p}": f"'1970-01-01 00:00:01{_fraction('.000001', p)}'" for p in FSPS},
        "j": "'[]'",
    },
    {"id": "3"},  # every nullable column NULL
    {  # zero dates, zero-in-date and impossible dates (ALLOW_INVALID_DATES), YEAR 0000, invalid ENUM, empty SETs
        "id": "4", "dte": "'0000-00-00'", "dt0": "'0000-00-00 00:00:00'", "dt1": "'2021-02-30 12:00:00.5'",
        "dt2": "'2021-04-31 01:02:03.45'", "dt3": "'2020-00-10 10:00:00.123'", "dt4": "'2023-02-29 00:00:00.0001'",
        "dt6": "'2020-05-00 00:00:00.000001'", "ts0": "'0000-00-00 00:00:00'", "ts6": "'0000-00-00 00:00:00.000000'",
        "y": "0", "e": "'nope'", "e300": "'nope'", "s": "''", "s64": "''",
    },
    {  # every fsp; before 1970; the edges of timestamp('ns'); small values; 4-byte UTF-8
        "id": "5", **{f"dt{p}": f"'2024-02-29 12:34:56{_fraction('.123456', p)}'" for p in FSPS},
        **{f"ts{p}": f"'2000-01-01 00:00:00{_fraction('.123456', p)}'" for p in FSPS},
        "dte": "'2024-02-29'", "f": "0.1", "dbl": "0.1", "d12": "0.5", "d18": "-0.1", "d189": "0.000000001",
        "d5": "0.00001", "d104": "-123.4567", "d1": "0", "d38": "0", "d65": "0", "d20": "1",
        "vc": "'😀中文 ok'", "vs": "'a😀b'", "l1": "'çà'", "a1": "'x'", "lch": "'  x  '", "ch": "' a  '",
        "y": "1999", "e300": "'m255'", "s64": "'s0,s63'", "s": "'x,y,z'", "j": "'\"just a string\"'",
    },
    {"id": "6", "vc": "'to be deleted'", "d65": "0", "dt6": "'2001-01-01 00:00:00'"},  # NULL-heavy
    {"id": "7", "vc": "'before update'", "biu": "1", "dt0": "'1969-12-31 23:59:59'",
     "dt5": "'1969-12-31 23:59:59.99999'", "dt6": "'1677-09-21 00:12:43.145225'", "dt3": "'2262-04-11 23:47:16.854'"},
]  # fmt: skip


# --- random rows: every column NULL with probability 0.4, else a random value of its type --------------


def _decimal_literal(rng: random.Random, precision: int, scale: int) -> str:
    whole = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, precision - scale))) or "0"
    fraction = "".join(rng.choice("0123456789") for _ in range(scale))
    return f"'{rng.choice(['', '-'])}{whole}{'.' + fraction if scale else ''}'"


def _text_literal(rng: random.Random, alphabet: str, longest: int) -> str:
    return "'" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest))) + "'"


def _bytes_literal(rng: random.Random, longest: int) -> str:
    data = bytes(rng.randrange(256) for _ in range(rng.randint(0, longest)))
    return f"0x{data.hex()}" if data else "''"


def _datetime_literal(rng: random.Random, p: int, first_year: int, last_year: int) -> str:
    if rng.random() < 0.05:
        return "'0000-00-00 00:00:00'"
    value = dt.datetime(first_year, 1, 1) + dt.timedelta(
        seconds=rng.randrange(int((dt.datetime(last_year, 12, 31) - dt.datetime(first_year, 1, 1)).total_seconds()))
    )
    fraction = f"{rng.randrange(10**p):0{p}d}" if p else ""
    return f"'{value:%Y-%m-%d %H:%M:%S}{'.' + fraction if p else ''}'"


def _random_value(rng: random.Random, name: str) -> str:
    ints = {"ti": (-128, 127), "tiu": (0, 255), "si": (-(2**15), 2**15 - 1), "siu": (0, 2**16 - 1),
            "mi": (-(2**23), 2**23 - 1), "miu": (0, 2**24 - 1), "i": (-(2**31), 2**31 - 1), "iu": (0, 2**32 - 1),
            "bi": (-(2**63), 2**63 - 1), "biu": (0, 2**64 - 1)}  # fmt: skip
    decimals = {"d12": (12, 2), "d18": (18, 1), "d189": (18, 9), "d9": (9, 0), "d5": (5, 5), "d104": (10, 4),
                "d1": (1, 0), "d38": (38, 18), "d65": (65, 30), "d20": (20, 0)}  # fmt: skip
    utf8 = "ab z~é中😀 "
    if name in ints:
        low, high = ints[name]
        return str(rng.choice([low, high, 0, rng.randint(low, high)]))
    if name in decimals:
        return _decimal_literal(rng, *decimals[name])
    if name == "f":
        return repr(rng.choice([0.0, -1.5, rng.uniform(-1e30, 1e30), rng.uniform(-1, 1)]))
    if name == "dbl":
        return repr(rng.choice([0.0, 5e-324, rng.uniform(-1e300, 1e300), rng.uniform(-1, 1)]))
    texts = {"ch": (utf8, 5), "vc": (utf8, 300), "vs": (utf8, 20), "u3": ("abé中 ", 10), "tt": (utf8, 60),
             "tx": (utf8, 400), "mt": (utf8, 400), "lt": (utf8, 400), "l1": ("aç€ÿ ", 10), "lch": ("aç€ÿ ", 6),
             "a1": ("az ~", 10)}  # fmt: skip
    if name in texts:
        return _text_literal(rng, *texts[name])
    blobs = {"tb": 50, "bl": 300, "mb": 50, "lb": 50, "vb": 10, "bn": 4, "chb": 4, "vcb": 10}
    if name in blobs:
        return _bytes_literal(rng, blobs[name])
    if name == "dte":
        if rng.random() < 0.05:
            return "'0000-00-00'"
        return f"'{dt.date(1000, 1, 1) + dt.timedelta(days=rng.randrange(3_287_182)):%Y-%m-%d}'"
    if name.startswith("dt"):
        return _datetime_literal(rng, int(name[2:]), *rng.choice([(1000, 9999), (1678, 2261), (1969, 1971)]))
    if name.startswith("ts"):
        p = int(name[2:])
        if rng.random() < 0.05:
            return "'0000-00-00 00:00:00'"
        value = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=rng.randint(1, 2**31 - 1))
        fraction = f"{rng.randrange(10**p):0{p}d}" if p else ""
        return f"'{value:%Y-%m-%d %H:%M:%S}{'.' + fraction if p else ''}'"
    if name == "y":
        return str(rng.choice([0, 1901, 2155, rng.randint(1901, 2155)]))
    if name == "e":
        return rng.choice(["'a'", "'b'", "'it''s'", "'nope'"])
    if name == "e300":
        return f"'{rng.choice(ENUM300)}'"
    if name in ("s", "s_nn"):
        return "'" + ",".join(m for m in "xyz" if rng.random() < 0.5) + "'"
    if name == "s64":
        return "'" + ",".join(m for m in SET64 if rng.random() < 0.1) + "'"
    if name == "j":
        return rng.choice(["'{\"k\": 1}'", "'[1, 2, 3]'", "'\"x😀\"'", "'null'", "'{\"a\": {\"b\": [true]}}'"])
    raise AssertionError(name)


def _random_rows(rng: random.Random, first_id: int, count: int) -> list[dict[str, str]]:
    names = [column.split()[0] for column in EVERY_TYPE[1:]]
    rows = []
    for offset in range(count):
        row = {"id": str(first_id + offset)}
        for name in names:
            if name == "s_nn" or rng.random() >= 0.4:
                row[name] = _random_value(rng, name)
        rows.append(row)
    return rows


# --- helpers ---------------------------------------------------------------------------------------


def _endpoint(server) -> MySqlEndpoint:
    return MySqlEndpoint(host=server.host, port=server.port, user=server.user, password=server.password)


def _coordinate(server) -> BinlogCoordinate:
    conn = _endpoint(server).connect()
    try:
        return capture(conn)
    finally:
        conn.close()


def _database(server, *tables: str) -> str:
    database = f"cd_{uuid.uuid4().hex[:8]}"
    server.execute(f"CREATE DATABASE {database}", *(f"CREATE TABLE {database}.{t}" for t in tables))
    return database


def _insert(cur, table: str, rows: list[dict[str, str]]) -> None:
    for row in rows:
        names = ", ".join(f"`{name}`" for name in row)
        cur.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join(row.values())})")


def _insert_many(cur, table: str, rows: list[dict[str, str]], names: list[str]) -> None:
    """One multi-row INSERT (several rows per rows event); absent columns are NULL."""
    tuples = ", ".join("(" + ", ".join(row.get(name, "NULL") for name in names) + ")" for row in rows)
    cur.execute(f"INSERT INTO {table} ({', '.join(f'`{n}`' for n in names)}) VALUES {tuples}")


def _plans(server, database: str, table: str, datetime_type: str = "timestamp_ntz") -> list[ColumnPlan]:
    conn = _endpoint(server).connect()
    try:
        described = describe_tables(conn, database, [table])[table]
    finally:
        conn.close()
    options = MappingOptions(datetime_type=datetime_type)  # type: ignore[arg-type]
    return [ColumnPlan(c, c.name, map_type(source_column_type(c), options)) for c in described.columns]


def _rows_events(server, start: BinlogCoordinate, end: BinlogCoordinate, database: str):
    """(event, table map) of every rows event of ``database`` in (start, end], read the way the reader does."""
    stream = BinLogStreamReader(
        connection_settings=_endpoint(server).replication_settings(),
        server_id=random.randint(1 << 30, (1 << 32) - 1),
        resume_stream=True,
        blocking=False,
        log_file=start.log_file,
        log_pos=start.log_pos,
        only_schemas=[database],
        only_events=None,
        filter_non_implemented_events=False,
        is_mariadb=False,  # the classic dump honours log_file/log_pos (reader.py)
        enable_logging=False,
    )
    try:
        for event in stream:
            position = event.packet.log_pos
            if position == 0:
                continue
            if (stream.log_file, position) > (end.log_file, end.log_pos):
                break
            if isinstance(event, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
                yield event, stream.table_map[event.table_id]
            if (stream.log_file, position) == (end.log_file, end.log_pos):
                break
    finally:
        stream.close()


def _library_images(event) -> list[tuple[dict, dict]]:
    """The event's row images as the library decodes them (an UPDATE: before, then after)."""
    images = []
    for row in event.rows:
        if isinstance(event, UpdateRowsEvent):
            images.append((row["before_values"], row["before_none_sources"]))
            images.append((row["after_values"], row["after_none_sources"]))
        else:
            images.append((row["values"], row["none_sources"]))
    return images


def _assert_same(plans: list[ColumnPlan], columns, images: list[tuple[dict, dict]], where: str = "") -> None:
    arrays, warnings = columns.to_arrow()
    assert len(columns) == len(images)
    expected_warnings = {}
    for plan in plans:
        name = plan.source.name
        want = convert_binlog_values(plan, [v.get(name) for v, _ in images], [s.get(name) for _, s in images])
        got = arrays[plan.destination]
        assert got.type == want.array.type, (where, name, got.type, want.array.type)
        assert got.equals(want.array), (where, name, got.to_pylist(), want.array.to_pylist())
        if want.warnings:
            expected_warnings[plan.destination] = want.warnings
    assert warnings == expected_warnings, where
    assert set(arrays) == {plan.destination for plan in plans}


def _compare_read(server, database: str, start, end, plan_sets: dict[str, tuple[str, list[ColumnPlan]]]) -> dict:
    """Compare every rows event of ``database`` in (start, end], per event and all of a table's events
    in one buffer (one per table-map layout), for each plan set (label -> (table, plans)). Returns per
    label the combined warnings, images and events."""
    segments: dict[str, list[list]] = {label: [] for label in plan_sets}  # -> [[buffer, library images]]
    events: dict[str, int] = dict.fromkeys(plan_sets, 0)
    for event, table_map in _rows_events(server, start, end, database):
        per_event = []
        for label, (table, plans) in plan_sets.items():
            if event.table != table:
                continue
            decoder = columnar_decoder(table_map, plans)
            assert decoder is not None, table
            buffer = decoder.new_buffer()
            appended = decoder.decode(event, buffer)
            if not segments[label] or not decoder.accepts(segments[label][-1][0]):
                segments[label].append([decoder.new_buffer(), []])  # equal table maps share one buffer
            assert decoder.decode(event, segments[label][-1][0]) == appended
            per_event.append((label, plans, buffer, appended))
        if not per_event:
            continue
        images = _library_images(event)  # after ours: the library consumes the packet
        for label, plans, buffer, appended in per_event:
            assert appended == len(images)
            _assert_same(plans, buffer, images, f"{event.table} event ending at {event.packet.log_pos}, {label}")
            segments[label][-1][1].extend(images)
            events[label] += 1
    results = {}
    for label, (table, plans) in plan_sets.items():
        warnings: dict[str, dict[str, int]] = {}
        for index, (buffer, images) in enumerate(segments[label]):
            _assert_same(plans, buffer, images, f"{table}, all events of layout {index}, {label}")
            for name, counts in buffer.to_arrow()[1].items():
                for key, rows in counts.items():
                    warnings.setdefault(name, {})[key] = warnings.get(name, {}).get(key, 0) + rows
        results[label] = {"warnings": warnings, "images": sum(len(b) for b, _ in segments[label]),
                          "events": events[label], "layouts": len(segments[label])}  # fmt: skip
    return results


# --- the tests ---------------------------------------------------------------------------------------------


def test_every_type_and_edge_value_matches_the_library(mysql_server):
    columns = ", ".join(EVERY_TYPE)
    db = _database(mysql_server, f"t ({columns})")
    names = [column.split()[0] for column in EVERY_TYPE]
    rng = random.Random(20240229)
    start = _coordinate(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")  # zero dates, Feb 30, invalid ENUM values in
            _insert(cur, f"{db}.t", FIXED_ROWS)
            for first in range(100, 400, 60):  # several rows per event, events of several rows
                _insert_many(cur, f"{db}.t", _random_rows(rng, first, 60), names)
            cur.execute(f"UPDATE {db}.t SET vc = '😀中文 updated', d12 = -d12 WHERE id = 1")
            cur.execute(f"UPDATE {db}.t SET vc = 'after update', dt6 = NULL, ti = NULL, biu = 18446744073709551614,"
                        " s64 = 's63' WHERE id = 7")  # fmt: skip
            cur.execute(f"UPDATE {db}.t SET i = 1 WHERE id = 4")  # zero dates in both images
            cur.execute(f"UPDATE {db}.t SET s = 'x', ch = NULL, ts3 = '2001-02-03 04:05:06.789' WHERE id IN (2, 3)")
            cur.execute(f"UPDATE {db}.t SET i = 7, vc = CONCAT('u', COALESCE(vc, '')) WHERE id >= 100 AND id < 250")
            cur.execute(f"DELETE FROM {db}.t WHERE id = 6 OR id >= 300")
    finally:
        conn.close()
    end = _coordinate(mysql_server)
    try:
        plan_sets = {
            "timestamp_ntz": ("t", _plans(mysql_server, db, "t")),
            "datetime": ("t", _plans(mysql_server, db, "t", datetime_type="datetime")),  # milliseconds
        }
        results = _compare_read(mysql_server, db, start, end, plan_sets)
        events = _rows_events(mysql_server, start, end, db)
        _, table_map = next(events)
        events.close()
        outputs = columnar_decoder(table_map, plan_sets["datetime"][1])._table.outputs
        by_value = {plan.source.name for plan, _, finisher in outputs if finisher is rows_decoder._finish_by_value}
        # Only these go value by value: DECIMAL beyond 18 digits, latin1 text, BINARY(n) padding, JSON text.
        assert by_value == {"d38", "d65", "d20", "l1", "lch", "bn", "chb", "j"}
        summary = results["timestamp_ntz"]
        assert summary["images"] == 7 + 300 + 2 * (1 + 1 + 1 + 2 + 150) + 1 + 100
        assert summary["events"] > 12  # multi-row events, split by size
        warnings = summary["warnings"]
        assert warnings["dte"][ZERO_DATE] >= 1
        assert warnings["dt1"][ZERO_DATE] >= 1  # 2021-02-30
        assert warnings["ts0"][ZERO_DATE] >= 1
        # every DATETIME is kept, 9999-12-31 included: zero dates are the only values that become NULL
        assert all(set(found) <= {ZERO_DATE} for found in warnings.values())
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")


def test_small_tables_and_a_column_added_later(mysql_server):
    """1- and 2-byte null bitmaps; a plan whose column an earlier table map lacks is all NULL."""
    db = _database(
        mysql_server,
        "narrow (id BIGINT NOT NULL PRIMARY KEY, qty INT, code VARCHAR(16), price DECIMAL(12,2), created DATETIME(3),"
        " flag TINYINT)",
        "orders (id BIGINT NOT NULL PRIMARY KEY, qty INT, code VARCHAR(16), price DECIMAL(12,2), ratio DOUBLE,"
        " small SMALLINT, created DATETIME(3), updated TIMESTAMP NULL DEFAULT NULL, body VARCHAR(255), flag TINYINT)",
    )
    start = _coordinate(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            for table in ("narrow", "orders"):
                cur.execute(
                    f"INSERT INTO {db}.{table} (id, qty, code, price, created, flag) VALUES"
                    " (1, 5, 'C1', -12.34, '2024-01-01 00:00:00.001', 1), (2, NULL, NULL, NULL, NULL, NULL),"
                    " (3, -1, '', 0, '1999-12-31 23:59:59.999', -128)"
                )
            cur.execute(f"UPDATE {db}.orders SET ratio = 1.5, updated = '2024-05-05 05:05:05', body = REPEAT('b', 255)")
            cur.execute(f"ALTER TABLE {db}.narrow ADD COLUMN extra VARCHAR(10), ADD COLUMN tags SET('a','b') NOT NULL")
            cur.execute(f"INSERT INTO {db}.narrow (id, extra, tags) VALUES (4, 'new', 'b')")
            cur.execute(f"UPDATE {db}.narrow SET qty = 6 WHERE id = 1")
            cur.execute(f"DELETE FROM {db}.orders WHERE id = 2")
    finally:
        conn.close()
    end = _coordinate(mysql_server)
    try:
        plan_sets = {t: (t, _plans(mysql_server, db, t)) for t in ("narrow", "orders")}
        assert [p.source.name for p in plan_sets["narrow"][1]][-2:] == ["extra", "tags"]
        results = _compare_read(mysql_server, db, start, end, plan_sets)
        assert results["orders"]["images"] == 3 + 6 + 1
        assert results["narrow"] == {"warnings": {}, "images": 3 + 1 + 2, "events": 3, "layouts": 2}
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")


def test_impossible_date_is_null_and_counted_like_the_full_load(mysql_server):
    """DATE 2020-02-30 (ALLOW_INVALID_DATES): the library raises ValueError for the whole event; the
    columnar decoder gives NULL counted as zero_date, which is what the full load gives for it."""
    db = _database(mysql_server, "d (id INT NOT NULL PRIMARY KEY, dte DATE)")
    start = _coordinate(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
            cur.execute(f"INSERT INTO {db}.d VALUES (1, '2020-02-30'), (2, '2020-02-28'), (3, NULL), (4, '0000-00-00')")
    finally:
        conn.close()
    end = _coordinate(mysql_server)
    try:
        plans = _plans(mysql_server, db, "d")
        (event, table_map), = list(_rows_events(mysql_server, start, end, db))  # fmt: skip
        decoder = columnar_decoder(table_map, plans)
        buffer = decoder.new_buffer()
        assert decoder.decode(event, buffer) == 4
        arrays, warnings = buffer.to_arrow()
        assert arrays["dte"].to_pylist() == [None, dt.date(2020, 2, 28), None, None]
        assert warnings == {"dte": {ZERO_DATE: 2}}
        snapshot = convert_snapshot_array(plans[1], pa.array(["2020-02-30", "2020-02-28", None, "0000-00-00"]))
        assert arrays["dte"].equals(snapshot.array) and warnings["dte"] == snapshot.warnings
        with pytest.raises(ValueError):
            event.rows  # noqa: B018 - the library's own decoding fails on this date
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")


def test_not_all_columns_present_returns_none_and_appends_nothing(mysql_server):
    db = _database(mysql_server, "t (id INT NOT NULL PRIMARY KEY, v VARCHAR(10), n INT)")
    start = _coordinate(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.t VALUES (1, 'a', 1), (2, 'b', 2)")
            cur.execute(f"UPDATE {db}.t SET n = n + 1")
    finally:
        conn.close()
    end = _coordinate(mysql_server)
    try:
        plans = _plans(mysql_server, db, "t")
        events = list(_rows_events(mysql_server, start, end, db))
        assert [type(e) for e, _ in events] == [WriteRowsEvent, UpdateRowsEvent]
        decoder = columnar_decoder(events[0][1], plans)
        buffer = decoder.new_buffer()
        for event, _ in events:
            attributes = ["columns_present_bitmap"]
            if isinstance(event, UpdateRowsEvent):
                attributes.append("columns_present_bitmap2")
            for attribute in attributes:
                full = getattr(event, attribute)
                setattr(event, attribute, bytes([full[0] & ~0b10]) + full[1:])  # column v not present
                assert decoder.decode(event, buffer) is None
                assert len(buffer) == 0
                setattr(event, attribute, full)
        assert decoder.decode(events[0][0], buffer) == 2
        assert decoder.decode(events[1][0], buffer) == 4
        _assert_same(plans, buffer, _library_images(events[0][0]) + _library_images(events[1][0]))
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")


def test_minimal_row_images_fall_back(mysql_server_factory):
    """binlog_row_image=MINIMAL: the before-images (and MariaDB's update after-images) hold only some
    columns; those events give None and leave the buffer alone, full ones decode as usual."""
    server = mysql_server_factory(binlog_row_image="MINIMAL")
    db = _database(server, "t (id INT NOT NULL PRIMARY KEY, v VARCHAR(10), n INT)")
    start = _coordinate(server)
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.t VALUES (1, 'a', 1), (2, 'b', 2)")
            cur.execute(f"UPDATE {db}.t SET n = n + 1")
            cur.execute(f"DELETE FROM {db}.t WHERE id = 1")
    finally:
        conn.close()
    end = _coordinate(server)
    plans = _plans(server, db, "t")
    refused = 0
    for event, table_map in _rows_events(server, start, end, db):
        decoder = columnar_decoder(table_map, plans)
        buffer = decoder.new_buffer()
        appended = decoder.decode(event, buffer)
        present = [int.from_bytes(event.columns_present_bitmap, "little")]
        if isinstance(event, UpdateRowsEvent):
            present.append(int.from_bytes(event.columns_present_bitmap2, "little"))
        if all(bits & 0b111 == 0b111 for bits in present):
            assert appended is not None
            _assert_same(plans, buffer, _library_images(event))
        else:
            assert appended is None and len(buffer) == 0
            assert buffer.to_arrow()[0]["id"].to_pylist() == []
            refused += 1
    assert refused >= 2  # the UPDATE and the DELETE


def test_unhandled_types_and_foreign_buffers(mysql_server):
    db = _database(
        mysql_server,
        "tm (id INT NOT NULL PRIMARY KEY, t TIME(3))",
        "bt (id INT NOT NULL PRIMARY KEY, b BIT(5))",
        "ok (id INT NOT NULL PRIMARY KEY, v VARCHAR(5))",
    )
    start = _coordinate(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.tm VALUES (1, '-00:00:01.5')")
            cur.execute(f"INSERT INTO {db}.bt VALUES (1, b'101')")
            cur.execute(f"INSERT INTO {db}.ok VALUES (1, 'x')")
            cur.execute(f"INSERT INTO {db}.ok VALUES (2, 'y')")
    finally:
        conn.close()
    end = _coordinate(mysql_server)
    try:
        plans = {t: _plans(mysql_server, db, t) for t in ("tm", "bt", "ok")}
        events = list(_rows_events(mysql_server, start, end, db))
        by_table: dict[str, list] = {}
        for event, table_map in events:
            by_table.setdefault(event.table, []).append((event, table_map))
        for table in ("tm", "bt"):
            table_map = by_table[table][0][1]
            assert columnar_decoder(table_map, plans[table]) is None
            assert table_decoder(table_map) is None
        (first, first_map), (second, second_map) = by_table["ok"]
        one, two = columnar_decoder(first_map, plans["ok"]), columnar_decoder(second_map, plans["ok"])
        buffer = one.new_buffer()
        assert two.accepts(buffer)  # two transactions' equal table maps
        assert one.decode(first, buffer) == 1 and two.decode(second, buffer) == 1
        _assert_same(plans["ok"], buffer, _library_images(first) + _library_images(second))
        other = columnar_decoder(first_map, plans["ok"][:1])  # other plans: another buffer layout
        assert not other.accepts(buffer)
        with pytest.raises(ValueError):
            other.decode(first, buffer)
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")


def test_event_read_by_the_library_first_is_refused(mysql_server):
    db = _database(mysql_server, "t (id INT NOT NULL PRIMARY KEY, v VARCHAR(10))")
    start = _coordinate(mysql_server)
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (1, 'a'), (2, NULL)")
    end = _coordinate(mysql_server)
    try:
        plans = _plans(mysql_server, db, "t")
        (event, table_map), = list(_rows_events(mysql_server, start, end, db))  # fmt: skip
        decoder = columnar_decoder(table_map, plans)
        buffer = decoder.new_buffer()
        assert len(_library_images(event)) == 2
        assert decoder.decode(event, buffer) is None and len(buffer) == 0
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")


def test_generated_walker_holds_numbers_only():
    """The compiled walker's text comes from column widths alone: no column name, value or other
    text of the source can reach ``compile``."""
    import ast

    layouts = [((False, 8), (True, 1), (False, 3)), ((True, 4),), tuple([(False, 1)] * 40 + [(True, 2)])]
    for layout in layouts:
        tree = ast.parse(rows_decoder._walker_source(layout))
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
        constants = {type(node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)}
        assert names <= {"data", "pos", "end", "append", "nulls", "int"}, names
        assert constants <= {int, str} and all(
            node.value == "little" for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
        )
