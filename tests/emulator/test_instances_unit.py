"""SQL instance plumbing with a stand-in SQL engine: lifecycle, error texts, result expiry."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest
from odps import errors as odps_errors

from airflow_provider_polar_mc.emulator import instances as inst_mod
from airflow_provider_polar_mc.emulator.errors import EmulatorError
from airflow_provider_polar_mc.emulator.instances import FAILED, SUCCESS, TERMINATED, InstanceManager
from airflow_provider_polar_mc.emulator.storage import NoSuchTable, Storage
from airflow_provider_polar_mc.emulator.types import parse_type


def _job(query: str) -> bytes:
    return (
        "<Instance><Job><Tasks><SQL><Name>AnonymousSQLTask</Name><Config><Property><Name>settings</Name>"
        '<Value>{"odps.sql.allow.fullscan": true}</Value></Property></Config>'
        f"<Query><![CDATA[{query}]]></Query></SQL></Tasks></Job></Instance>"
    ).encode()


class FakeSqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def fake_engine(storage, project, sql, settings):
    assert settings["odps.sql.allow.fullscan"] == "true"
    if sql == "select":
        col = SimpleNamespace(name="n", type=parse_type("bigint"))
        return SimpleNamespace(columns=[col], table=pa.table({"n": pa.array([7], pa.int64())}))
    if sql == "parse error":
        raise FakeSqlError("ODPS-0130161", "[1,1] Parse exception - invalid token 'x'")
    if sql == "missing":
        raise NoSuchTable("Table not found - table p.t cannot be resolved")
    if sql == "bug":
        raise ZeroDivisionError("oops")
    return None


@pytest.fixture
def manager(tmp_path):
    storage = Storage(tmp_path / "db.duckdb")
    mgr = InstanceManager(storage, run_sql=fake_engine, workers=2)
    yield mgr
    mgr.shutdown()
    storage.close()


def _run(mgr: InstanceManager, query: str):
    inst = mgr.submit("p", _job(query), "owner")
    assert inst.done.wait(30)  # returns as soon as it is done; generous for a busy 2-core runner
    return inst


def test_select_keeps_result_for_the_tunnel(manager):
    inst = _run(manager, "select")
    assert (inst.status, inst.task_status) == (TERMINATED, SUCCESS)
    assert manager.query_result("p", inst.id).table.num_rows == 1
    with pytest.raises(EmulatorError) as exc:
        manager.query_result("p", _run(manager, "ddl").id)
    assert exc.value.code == "InstanceTypeNotSupported"  # pyodps falls back to the result API
    with pytest.raises(EmulatorError) as missing:
        manager.get("other_project", inst.id)
    assert missing.value.status == 404


@pytest.mark.parametrize(
    "query,cls,code",
    [
        ("parse error", odps_errors.ParseError, "ODPS-0130161"),
        ("missing", odps_errors.NoSuchTable, "ODPS-0130131"),
        ("bug", odps_errors.InternalServerError, "ODPS-0010000"),
    ],
)
def test_failure_text_maps_to_pyodps_exception(manager, query, cls, code):
    inst = _run(manager, query)
    assert inst.task_status == FAILED
    exc = odps_errors.parse_instance_error(inst.error)
    assert isinstance(exc, cls) and exc.code == code


def test_old_results_expire(manager, monkeypatch):
    monkeypatch.setattr(inst_mod, "KEEP_RESULTS", 2)
    first = _run(manager, "select")
    for _ in range(2):
        _run(manager, "select")
    assert first.result is None and first.result_expired
    with pytest.raises(EmulatorError, match="expired"):
        manager.query_result("p", first.id)
