"""The emulator as pyodps sees it: the real ``odps.ODPS`` client against the emulator subprocess.

Nothing of pyodps is mocked; every call goes over HTTP to ``polar-mc-emulator``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from odps import errors as odps_errors
from odps.tunnel import TableTunnel

pytestmark = pytest.mark.integration

ALL_TYPES = [
    ("c_bigint", "bigint"),
    ("c_int", "int"),
    ("c_smallint", "smallint"),
    ("c_tinyint", "tinyint"),
    ("c_boolean", "boolean"),
    ("c_float", "float"),
    ("c_double", "double"),
    ("c_dec", "decimal(12,2)"),
    ("c_dec38", "decimal(38,18)"),
    ("c_string", "string"),
    ("c_varchar", "varchar(20)"),
    ("c_char", "char(6)"),
    ("c_binary", "binary"),
    ("c_date", "date"),
    ("c_datetime", "datetime"),
    ("c_timestamp", "timestamp"),
    ("c_json", "json"),
]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def o(emulator):
    return emulator.client()


def read_arrow(o, name: str, partition: str | None = None) -> pa.Table:
    """All rows of a table (partition) through a tunnel download session, as Arrow."""
    tunnel = TableTunnel(o)
    session = tunnel.create_download_session(name, partition_spec=partition)
    if session.count == 0:
        return pa.table({})
    with session.open_arrow_reader(0, session.count) as reader:
        return reader.read()


def read_records(o, name: str, partition: str | None = None) -> list[list]:
    tunnel = TableTunnel(o)
    session = tunnel.create_download_session(name, partition_spec=partition)
    with session.open_record_reader(0, session.count) as reader:
        return [list(r.values) for r in reader]


# -- catalog over REST and SQL ---------------------------------------------------------------------


def test_project_and_missing_table(o, emulator):
    assert o.get_project().name == emulator.project
    assert not o.exist_table("no_such_table_here")
    with pytest.raises(odps_errors.NoSuchObject):
        o.get_table("no_such_table_here").reload()


def test_wrong_key_is_refused(emulator):
    bad = emulator.client(access_key="not-the-key")
    with pytest.raises(odps_errors.SignatureNotMatch):
        bad.exist_table("anything")
    # the Tunnel checks signatures too (endpoint given explicitly, as the alternative to discovery)
    with pytest.raises(odps_errors.SignatureNotMatch):
        TableTunnel(bad, endpoint=emulator.url + "/tunnel").create_upload_session("anything")
    with pytest.raises(odps_errors.Unauthorized):
        emulator.client().__class__("someone-else", emulator.access_key, emulator.project,
                                    endpoint=emulator.endpoint).exist_table("anything")  # fmt: skip


def test_create_get_list_drop_table_with_all_types(o):
    name = unique("all_types")
    cols = ", ".join(f"{n} {t} comment 'col {n}'" for n, t in ALL_TYPES)
    o.create_table(name, (cols, "ds string, region string"), if_not_exists=True, lifecycle=7, comment="all types")
    o.create_table(name, (cols, "ds string, region string"), if_not_exists=True)  # idempotent

    t = o.get_table(name)
    assert [(c.name, str(c.type).lower()) for c in t.table_schema.simple_columns] == ALL_TYPES
    assert [p.name for p in t.table_schema.partitions] == ["ds", "region"]
    assert t.table_schema.simple_columns[0].comment == "col c_bigint"
    assert t.comment == "all types"
    assert t.lifecycle == 7
    assert t.creation_time is not None and t.last_data_modified_time is not None
    assert t.record_num == 0

    assert name in [x.name for x in o.list_tables(prefix=name[:9])]
    assert o.exist_table(name)
    o.delete_table(name, if_exists=True)
    assert not o.exist_table(name)
    o.delete_table(name, if_exists=True)


def test_partitions_create_exist_list_drop(o):
    name = unique("parts")
    o.create_table(name, ("id bigint", "ds string, hh string"))
    t = o.get_table(name)
    t.create_partition("ds='20240101',hh='01'")
    t.create_partition("ds=20240101,hh=02", if_not_exists=True)
    t.create_partition("ds='20240102',hh='01'")
    assert t.exist_partition("ds='20240101',hh='02'")
    assert not t.exist_partition("ds='20991231',hh='00'")
    specs = sorted(str(p.partition_spec) for p in t.partitions)
    assert specs == ["ds='20240101',hh='01'", "ds='20240101',hh='02'", "ds='20240102',hh='01'"]
    under = sorted(str(p.partition_spec) for p in t.iterate_partitions("ds='20240101'"))
    assert len(under) == 2
    part = t.get_partition("ds='20240101',hh='01'")
    assert part.record_num == 0 and part.creation_time is not None
    t.delete_partition("ds='20240101',hh='01'")
    assert not t.exist_partition("ds='20240101',hh='01'")
    with pytest.raises(odps_errors.NoSuchObject):
        t.get_partition("ds='20240101',hh='01'").reload()


def test_alter_table_add_columns(o):
    name = unique("alter")
    o.create_table(name, "id bigint")
    o.execute_sql(f"ALTER TABLE {name} ADD COLUMNS (note string comment 'added', amount decimal(12,2))")
    cols = [(c.name, str(c.type).lower()) for c in o.get_table(name).table_schema.simple_columns]
    assert cols == [("id", "bigint"), ("note", "string"), ("amount", "decimal(12,2)")]


# -- SQL instances ------------------------------------------------------------------------------------


def test_bad_sql_raises_parse_error_with_message(o):
    with pytest.raises(odps_errors.ODPSError) as exc:
        o.execute_sql("SELECT id FROM WHERE")
    assert exc.value.code == "ODPS-0130161"
    assert "Parse exception" in str(exc.value) and "WHERE" in str(exc.value)
    assert isinstance(exc.value, odps_errors.ParseError)
    assert exc.value.instance_id


def test_sql_on_missing_table_raises_no_such_object(o):
    with pytest.raises(odps_errors.NoSuchObject):
        o.execute_sql("SELECT * FROM table_that_does_not_exist_x")


def test_select_results_through_tunnel_and_result_api(o):
    name = unique("res")
    o.create_table(name, "id bigint, name string, amount decimal(12,2), ok boolean")
    o.execute_sql(
        f"INSERT INTO {name} SELECT 1, 'a,b', CAST(1.50 AS DECIMAL(12,2)), true UNION ALL "
        "SELECT 2, NULL, CAST(-2.25 AS DECIMAL(12,2)), false UNION ALL "
        "SELECT 3, 'c\"d', CAST(0 AS DECIMAL(12,2)), NULL"
    )
    inst = o.execute_sql(f"SELECT id, name, amount, ok FROM {name} ORDER BY id LIMIT 100")
    with inst.open_reader(tunnel=True) as reader:
        via_tunnel = [list(r.values) for r in reader]
    with inst.open_reader(tunnel=False) as reader:
        via_result = [list(r.values) for r in reader]
    expected = [[1, "a,b", Decimal("1.50"), True], [2, None, Decimal("-2.25"), False], [3, 'c"d', Decimal("0.00"), None]]
    assert via_tunnel == expected
    assert via_result == expected
    inst2 = o.run_sql(f"SELECT count(*) AS n FROM {name}")
    inst2.wait_for_success()
    with inst2.open_reader() as reader:
        assert [r[0] for r in reader] == [3]


def test_partitioned_read_needs_fullscan_or_filter(o):
    name = unique("fullscan")
    o.create_table(name, ("id bigint", "ds string"))
    o.execute_sql(f"INSERT INTO {name} PARTITION (ds='1') SELECT 1 UNION ALL SELECT 2")
    with pytest.raises(odps_errors.ODPSError) as exc:
        o.execute_sql(f"SELECT count(*) FROM {name}")
    assert exc.value.code == "ODPS-0130241"
    with o.execute_sql(f"SELECT count(*) FROM {name} WHERE ds = '1'").open_reader() as reader:
        assert [r[0] for r in reader] == [2]
    with o.execute_sql(f"set odps.sql.allow.fullscan=true;\nSELECT count(*) FROM {name}").open_reader() as reader:
        assert [r[0] for r in reader] == [2]
    with o.execute_sql(f"SELECT count(*) FROM {name}", hints={"odps.sql.allow.fullscan": "true"}).open_reader() as r:
        assert [x[0] for x in r] == [2]


def test_insert_overwrite_with_row_number_keeps_latest_per_key(o):
    log, replica = unique("log"), unique("replica")
    o.create_table(log, ("id bigint, val string, record_id bigint, op string", "ds string"))
    o.create_table(replica, "id bigint, val string")
    o.execute_sql(
        f"INSERT INTO {log} PARTITION (ds='20240101') "
        + " UNION ALL ".join(
            f"SELECT {i}, {v}, {r}, '{op}'"
            for i, v, r, op in [(1, "'a1'", 10, "I"), (1, "'a2'", 12, "U"), (2, "'b1'", 11, "I"),
                                (3, "'c1'", 13, "I"), (3, "NULL", 14, "D")]
        )
    )
    o.execute_sql(
        f"""set odps.sql.allow.fullscan=true;
        INSERT OVERWRITE TABLE {replica}
        SELECT id, val FROM (
            SELECT id, val, op, ROW_NUMBER() OVER (PARTITION BY id ORDER BY record_id DESC) AS rn FROM {log}
        ) latest WHERE rn = 1 AND op <> 'D'"""
    )
    with o.execute_sql(f"SELECT id, val FROM {replica} ORDER BY id LIMIT 10").open_reader() as reader:
        assert [list(r.values) for r in reader] == [[1, "a2"], [2, "b1"]]


# -- tunnel uploads -----------------------------------------------------------------------------------


def _all_types_rows(n: int) -> list[list]:
    base_dt = dt.datetime(2024, 2, 29, 23, 59, 58, 123000)
    rows = []
    for i in range(n):
        rows.append(
            [
                (2**63 - 1) if i == 0 else -(2**63 - 1) if i == 1 else i * 1_000_003,
                2**31 - 1 if i == 0 else -(2**31) + 1 if i == 1 else i,
                i % 32767,
                i % 127 - 63,
                i % 3 == 0,
                float(i) / 4,
                i * 0.1,
                Decimal(f"{i}.{i % 100:02d}") * (-1 if i % 2 else 1),
                Decimal("12345678901234567890.123456789012345678") if i == 0 else Decimal(f"{i}.000000000000000001"),
                f"row {i} 😀 ñ 中文 \\ \"q\" \n tab\t",
                f"v{i}"[:20],
                f"c{i % 10000:05d}",
                bytes([i % 256, 0, 255]) + f"{i}".encode(),
                dt.date(2024, 1, 1) + dt.timedelta(days=i % 1000),
                base_dt + dt.timedelta(milliseconds=i),
                None,  # filled below (timestamps need pandas)
                json.dumps({"i": i, "s": "😀"}),
            ]
        )
    import pandas as pd

    for i, row in enumerate(rows):
        row[15] = pd.Timestamp("2024-03-10 01:02:03.123456") + pd.Timedelta(microseconds=i)
        if i % 97 == 5:  # some NULLs in every column
            rows[i] = [None] * len(row)
    return rows


def test_record_writer_10k_rows_round_trip_exact(o):
    name = unique("records")
    cols = ", ".join(f"{n} {t}" for n, t in ALL_TYPES)
    o.create_table(name, (cols, "ds string"))
    rows = _all_types_rows(10_000)
    t = o.get_table(name)
    with t.open_writer(partition="ds='x'", create_partition=True) as writer:
        writer.write(rows)
    got = read_records(o, name, "ds='x'")
    assert len(got) == len(rows)
    for want, have in zip(rows, got, strict=True):
        have = have[: len(ALL_TYPES)]
        if want[16] is not None:
            have[16] = json.dumps(json.loads(have[16]) if isinstance(have[16], str) else have[16])
        if want[12] is not None and isinstance(have[12], str):
            have[12] = have[12].encode("latin1")
        assert have == want


def _arrow_rows(n: int, start: int = 0) -> pa.Table:
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table(
        {
            "id": ids,
            "qty": pc.cast(pc.remainder(ids, 100000), pa.int32()),
            "code": pc.binary_join_element_wise(pa.scalar("code-"), pc.cast(ids, pa.string()), ""),
            "price": cents_to_decimal(pc.subtract(pc.multiply(ids, 37), 1_000_000)),
            "ratio": pc.divide(pc.cast(ids, pa.float64()), 3.0),
            "ts": pc.cast(pc.add(pc.multiply(ids, 1_000_001), 1_700_000_000_000_000), pa.timestamp("us", "UTC")),
            "note": pc.binary_join_element_wise(pa.scalar("😀 note "), pc.cast(ids, pa.string()), ""),
        }
    )


def cents_to_decimal(cents: pa.Array, precision: int = 12) -> pa.Array:
    """Integer cents as DECIMAL(precision, 2), built from the 128-bit words (exact, vectorised)."""
    values = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = values, values >> 63  # low word, sign-extended high word
    return pa.Array.from_buffers(pa.decimal128(precision, 2), len(values), [None, pa.py_buffer(words.tobytes())])


ARROW_DDL = "id bigint, qty int, code string, price decimal(12,2), ratio double, ts timestamp, note string"


def _normalized(table: pa.Table) -> pa.Table:
    """Arrow read back, with timestamps compared as UTC instants and rows in id order."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = pc.cast(col.cast(pa.timestamp("us", col.type.tz or "UTC")), pa.timestamp("us", "UTC"))
        cols[name] = col
    out = pa.table(cols)
    return out.sort_by("id") if "id" in out.column_names else out


@pytest.mark.slow
def test_arrow_writer_1m_rows_round_trip(o):
    name = unique("arrow1m")
    o.create_table(name, ARROW_DDL)
    data = _arrow_rows(1_000_000)
    t = o.get_table(name)
    with t.open_writer(arrow=True) as writer:
        for batch in data.to_batches(max_chunksize=100_000):
            writer.write(batch)
    t.reload()
    assert t.record_num == 1_000_000
    got = _normalized(read_arrow(o, name))
    assert got.num_rows == 1_000_000
    assert got.select(data.column_names).equals(_normalized(data))


def test_overwrite_replaces_partition(o):
    name = unique("overwrite")
    o.create_table(name, (ARROW_DDL, "ds string"))
    tunnel = TableTunnel(o)
    for start, overwrite in ((0, False), (100, True)):
        session = tunnel.create_upload_session(name, partition_spec="ds='1'", create_partition=True, overwrite=overwrite)
        with session.open_arrow_writer(0) as writer:
            writer.write(_arrow_rows(50, start))
        session.commit([0])
    ids = read_arrow(o, name, "ds='1'").column("id").to_pylist()
    assert sorted(ids) == list(range(100, 150))


def test_reattach_upload_session_by_id_and_commit(o):
    name = unique("reattach")
    o.create_table(name, ARROW_DDL)
    tunnel = TableTunnel(o)
    session = tunnel.create_upload_session(name)
    with session.open_arrow_writer(0) as writer:
        writer.write(_arrow_rows(10))
    upload_id = session.id
    again = TableTunnel(o).create_upload_session(name, upload_id=upload_id)
    assert again.id == upload_id
    with again.open_arrow_writer(1) as writer:
        writer.write(_arrow_rows(10, 10))
    again.commit([0, 1])
    assert sorted(read_arrow(o, name).column("id").to_pylist()) == list(range(20))


def test_commit_names_the_blocks(o):
    name = unique("blocks")
    o.create_table(name, ARROW_DDL)
    tunnel = TableTunnel(o)
    session = tunnel.create_upload_session(name)
    for block, start in ((7, 0), (3, 100), (7, 200)):  # block 7 written twice: the last write counts
        with session.open_arrow_writer(block) as writer:
            writer.write(_arrow_rows(5, start))
    with pytest.raises(odps_errors.ODPSError):
        session.commit([3])  # the server holds blocks 3 and 7
    assert read_arrow(o, name).num_rows == 0
    session.commit([3, 7])
    assert sorted(read_arrow(o, name).column("id").to_pylist()) == [*range(100, 105), *range(200, 205)]


# -- restarts and faults (private emulators) ----------------------------------------------------------


def test_data_survives_restart(private_emulator):
    o = private_emulator.client()
    name = unique("durable")
    o.create_table(name, (ARROW_DDL, "ds string"))
    with o.get_table(name).open_writer(partition="ds='a'", create_partition=True, arrow=True) as writer:
        writer.write(_arrow_rows(1000))
    private_emulator.restart()  # SIGTERM: must exit 0 after closing DuckDB
    assert "INFO polar_mc_emulator: stopped" in private_emulator.log_path.read_text()
    o2 = private_emulator.client()
    t = o2.get_table(name)
    assert [c.name for c in t.table_schema.simple_columns][:2] == ["id", "qty"]
    assert t.exist_partition("ds='a'")
    assert read_arrow(o2, name, "ds='a'").num_rows == 1000
    with o2.execute_sql(f"SELECT sum(id) FROM {name} WHERE ds='a'").open_reader() as reader:
        assert [r[0] for r in reader] == [sum(range(1000))]


def test_fault_injection_fails_some_requests(private_emulator):
    o = private_emulator.client()
    name = unique("faulty")
    o.create_table(name, "id bigint")
    # GETs are retried by pyodps on 503: two injected failures are absorbed.
    private_emulator.set_faults(rate=1.0, kinds=["503"], paths=["/api/projects"], methods=["GET"], limit=2)
    assert o.exist_table(name)
    assert private_emulator.faults()["injected"] == 2
    # POSTs are not retried: the injected error reaches the caller.
    private_emulator.set_faults(rate=1.0, kinds=["500"], methods=["POST"], paths=["/api"])
    with pytest.raises(odps_errors.ODPSError) as exc:
        o.run_sql(f"SELECT * FROM {name}")
    assert exc.value.status_code == 500
    # a dropped tunnel connection: pyodps's tunnel retry handler reconnects and carries on
    private_emulator.set_faults(rate=1.0, kinds=["drop"], paths=["/tunnel"], limit=1)
    session = TableTunnel(o).create_upload_session(name)
    assert private_emulator.faults()["injected"] == 1
    with session.open_record_writer(0) as writer:
        writer.write(session.new_record([42]))
    session.commit([0])
    private_emulator.clear_faults()
    assert read_records(o, name) == [[42]]


def test_a_job_submitted_again_with_its_guid_gets_the_same_instance(o):
    """MaxCompute's idempotent submission: a client that lost the answer submits again with the same
    unique identifier and must not run the statement twice."""
    table = f"guid_{uuid.uuid4().hex[:8]}"
    o.execute_sql(f"CREATE TABLE {table} (id BIGINT)")
    guid = uuid.uuid4().hex
    first = o.run_sql(f"INSERT INTO {table} SELECT 1", unique_identifier_id=guid)
    again = o.run_sql(f"INSERT INTO {table} SELECT 1", unique_identifier_id=guid)
    assert again.id == first.id
    again.wait_for_success()
    other = o.run_sql(f"INSERT INTO {table} SELECT 1", unique_identifier_id=uuid.uuid4().hex)
    assert other.id != first.id
    other.wait_for_success()
    with o.execute_sql(f"SELECT COUNT(*) AS n FROM {table}").open_reader() as reader:
        assert [r["n"] for r in reader] == [2]
