"""Pure parts of the emulator's HTTP layer: signatures, routing, error shapes, fault settings."""

from __future__ import annotations

import pytest
import requests
from odps import errors as odps_errors
from odps.accounts import AliyunAccount

from airflow_provider_polar_mc.emulator import render
from airflow_provider_polar_mc.emulator.auth import Authenticator, canonical_string, sign_v2
from airflow_provider_polar_mc.emulator.errors import EmulatorError
from airflow_provider_polar_mc.emulator.faults import FaultConfig, FaultConfigError, FaultInjector
from airflow_provider_polar_mc.emulator.http import Headers, Request, Response
from airflow_provider_polar_mc.emulator.instances import parse_job
from airflow_provider_polar_mc.emulator.rest import Router
from airflow_provider_polar_mc.emulator.server import redact_target, split_mount

ENDPOINT = "http://127.0.0.1:9/api"


def _signed_by_pyodps(method: str, url: str, access_id: str, key: str, region: str | None = None, **kw):
    """A request prepared and signed by pyodps's own account class (the reference implementation)."""
    prepared = requests.Request(method, url, **kw).prepare()
    AliyunAccount(access_id, key).sign_request(prepared, ENDPOINT, region_name=region)
    relative = prepared.url[len(ENDPOINT) :]
    return prepared, relative


@pytest.mark.parametrize(
    "url,kw",
    [
        (ENDPOINT + "/projects/p/tables", {"params": {"expectmarker": "true", "curr_project": "p"}}),
        (ENDPOINT + "/projects/p/tables/t?partitions", {"params": {"partition": "pt='2024-01-01 00:00'"}}),
        (ENDPOINT + "/projects/p/instances", {"data": b"<Instance/>", "headers": {"Content-Type": "application/xml"}}),
        (ENDPOINT + "/projects/p/tables/t", {"params": {"x-odps-extra": "v", "name": "a b+c"}}),
    ],
)
@pytest.mark.parametrize("region", [None, "cn-hangzhou"])
def test_signatures_made_by_pyodps_verify(url, kw, region):
    method = "POST" if "data" in kw else "GET"
    prepared, relative = _signed_by_pyodps(method, url, "ak", "secret", region, **kw)
    Authenticator("ak", "secret").verify(method, relative, Headers(prepared.headers.items()))


def test_wrong_key_and_unknown_id_are_refused_with_codes_pyodps_maps():
    prepared, relative = _signed_by_pyodps("GET", ENDPOINT + "/projects/p", "ak", "wrong")
    with pytest.raises(EmulatorError) as bad_sig:
        Authenticator("ak", "secret").verify("GET", relative, Headers(prepared.headers.items()))
    assert (bad_sig.value.status, bad_sig.value.code) == (403, "SignatureNotMatch")

    prepared, relative = _signed_by_pyodps("GET", ENDPOINT + "/projects/p", "other", "secret")
    with pytest.raises(EmulatorError) as bad_id:
        Authenticator("ak", "secret").verify("GET", relative, Headers(prepared.headers.items()))
    assert (bad_id.value.status, bad_id.value.code) == (401, "Unauthorized")

    with pytest.raises(EmulatorError) as missing:
        Authenticator("ak", "secret").verify("GET", "/projects/p", Headers({"Date": "x"}))
    assert missing.value.code == "Unauthorized"


def test_tampered_request_is_refused():
    prepared, relative = _signed_by_pyodps("GET", ENDPOINT + "/projects/p/tables/t", "ak", "secret")
    with pytest.raises(EmulatorError):
        Authenticator("ak", "secret").verify("GET", relative.replace("/t", "/u"), Headers(prepared.headers.items()))


def test_canonical_string_shape():
    headers = Headers({"Date": "D", "Content-Type": "application/xml", "x-odps-b": "2", "x-odps-a": "1"})
    text = canonical_string("post", "/projects/p/instances?b=2&a&curr_project=p", headers)
    assert text == "POST\n\napplication/xml\nD\nx-odps-a:1\nx-odps-b:2\n/projects/p/instances?a&b=2&curr_project=p"
    assert sign_v2("k", text) != sign_v2("k2", text)


def test_authenticator_repr_hides_key():
    assert "secret" not in repr(Authenticator("ak", "secret"))


def _fake_response(resp: Response) -> requests.Response:
    out = requests.Response()
    out.status_code = resp.status
    out._content = resp.body  # type: ignore[assignment]
    out.headers.update(resp.headers)
    return out


@pytest.mark.parametrize(
    "code,cls",
    [
        ("NoSuchObject", odps_errors.NoSuchObject),
        ("NoSuchPartition", odps_errors.NoSuchPartition),
        ("SignatureNotMatch", odps_errors.SignatureNotMatch),
        ("Unauthorized", odps_errors.Unauthorized),
        ("InvalidArgument", odps_errors.InvalidArgument),
        ("ODPS-0130161", odps_errors.ParseError),
    ],
)
def test_xml_error_parses_into_pyodps_exception(code, cls):
    resp = render.xml_error(EmulatorError(400, code, "the <message> & more"), "req-1")
    exc = odps_errors.parse_response(_fake_response(resp))
    assert isinstance(exc, cls)
    assert "the <message> & more" in str(exc)
    assert exc.request_id == "req-1"


def test_json_error_parses_for_tunnel():
    resp = render.json_error(EmulatorError(404, "NoSuchObject", "no session"), "req-2")
    exc = odps_errors.parse_response(_fake_response(resp))
    assert isinstance(exc, odps_errors.NoSuchObject) and "no session" in str(exc)


def test_cdata_survives_terminator():
    from xml.etree import ElementTree as ET

    root = render.element("R", render.cdata("a]]>b<c>"))
    assert ET.fromstring(render.xml_document(root)).text == "a]]>b<c>"


def _req(method: str, path: str) -> Request:
    return Request(method, path, path, {}, Headers())


def test_router_404_405_and_params():
    router = Router()
    router.add("GET", "/projects/{project}/tables/{table}", lambda req, p: Response(200, {}, p["table"].encode()))
    assert router.dispatch(_req("GET", "/projects/p/tables/t1")).body == b"t1"
    with pytest.raises(EmulatorError) as not_found:
        router.dispatch(_req("GET", "/projects/p/volumes"))
    assert not_found.value.status == 404
    with pytest.raises(EmulatorError) as not_allowed:
        router.dispatch(_req("DELETE", "/projects/p/tables/t1"))
    assert not_allowed.value.status == 405


def test_split_mount():
    assert split_mount("/api/projects/p") == ("/api", "/projects/p")
    assert split_mount("/tunnel/projects/p/tables/t") == ("/tunnel", "/projects/p/tables/t")
    assert split_mount("/projects/p") == ("", "/projects/p")
    assert split_mount("/_emulator/faults") == ("/_emulator", "/faults")
    assert split_mount("/favicon.ico") == ("", "")


def test_redact_target():
    assert redact_target("/api/x?Signature=abc&curr_project=p") == "/api/x?Signature=***&curr_project=p"
    assert redact_target("/api/x?token=t&partitions") == "/api/x?token=***&partitions"


def test_fault_config_parse_and_json_agree():
    cfg = FaultConfig.parse("rate=0.05,kinds=5xx+timeout+drop,seed=7,paths=/tunnel,delay=2")
    assert cfg == FaultConfig(rate=0.05, kinds=("5xx", "timeout", "drop"), seed=7, paths=("/tunnel",), delay=2.0)
    assert FaultConfig.from_mapping(cfg.to_json()) == cfg
    assert FaultConfig.parse("") == FaultConfig() and not FaultConfig().enabled


@pytest.mark.parametrize("text", ["rate=2", "kinds=explode", "bogus=1", "rate", "seed=x", "delay=-1"])
def test_fault_config_rejects_nonsense(text):
    with pytest.raises(FaultConfigError):
        FaultConfig.parse(text)


def test_fault_injector_is_reproducible_and_filtered():
    cfg = FaultConfig(rate=0.5, kinds=("5xx", "drop"), seed=3, paths=("/tunnel",))
    a, b = FaultInjector(cfg), FaultInjector(cfg)
    seq_a = [a.pick("PUT", "/tunnel/projects/p") for _ in range(50)]
    seq_b = [b.pick("PUT", "/tunnel/projects/p") for _ in range(50)]
    assert seq_a == seq_b
    kinds = {f.kind for f in seq_a if f}
    assert kinds <= {"500", "503", "drop"} and len(kinds) > 1
    assert a.pick("GET", "/api/projects/p") is None


def test_fault_limit():
    inj = FaultInjector(FaultConfig(rate=1.0, kinds=("503",), limit=2))
    picks = [inj.pick("GET", "/api") for _ in range(5)]
    assert [p.kind if p else None for p in picks] == ["503", "503", None, None, None]
    assert inj.injected == 2


def test_parse_job_reads_query_and_settings():
    body = b"""<?xml version="1.0"?><Instance><Job><Priority>9</Priority><Tasks><SQL><Name>AnonymousSQLTask</Name>
    <Config><Property><Name>settings</Name><Value>{"odps.sql.allow.fullscan": "true", "n": 1}</Value></Property>
    </Config><Query><![CDATA[select 1;]]></Query></SQL></Tasks></Job></Instance>"""
    task_type, name, query, settings, job_xml = parse_job(body)
    assert (task_type, name, query) == ("SQL", "AnonymousSQLTask", "select 1;")
    assert settings == {"odps.sql.allow.fullscan": "true", "n": "1"}
    assert job_xml.startswith(b"<Job>")


def test_parse_job_rejects_other_tasks_by_name():
    body = b"<Instance><Job><Tasks><MaxFrame><Name>x</Name></MaxFrame></Tasks></Job></Instance>"
    with pytest.raises(EmulatorError, match="MaxFrame"):
        parse_job(body)


def test_result_csv_reads_back_through_pyodps_csv_reader():
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa
    from odps.models import TableSchema
    from odps.readers import CsvRecordReader

    from airflow_provider_polar_mc.emulator.catalog import Column
    from airflow_provider_polar_mc.emulator.instances import result_csv, result_descriptor
    from airflow_provider_polar_mc.emulator.types import parse_type

    class Result:
        columns = [Column(n, parse_type(t)) for n, t in
                   [("i", "bigint"), ("s", "string"), ("d", "decimal(12,2)"), ("b", "boolean"),
                    ("dt", "datetime"), ("ts", "timestamp"), ("day", "date"), ("f", "double")]]  # fmt: skip
        table = pa.table(
            {
                "i": pa.array([1, None], pa.int64()),
                "s": pa.array(['a,"b"\nc \\ 😀', None]),
                "d": pa.array([Decimal("-12.30"), None], pa.decimal128(12, 2)),
                "b": pa.array([True, None]),
                "dt": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 678000), None], pa.timestamp("ms")),
                "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 123456), None], pa.timestamp("ns")),
                "day": pa.array([dt.date(2024, 2, 29), None], pa.date32()),
                "f": pa.array([0.1, None]),
            }
        )

    text, truncated = result_csv(Result(), limit=10)
    assert not truncated
    desc = result_descriptor(Result(), truncated)["Schema"]["Columns"]
    schema = TableSchema.from_lists([c["Name"] for c in desc], [c["Type"] for c in desc])
    rows = [list(r.values) for r in CsvRecordReader(schema, text)]
    assert rows[1] == [None] * 8
    i, s, d, b, dt_, ts, day, f = rows[0]
    assert (i, s, d, b, day, f) == (1, 'a,"b"\nc \\ 😀', Decimal("-12.30"), True, dt.date(2024, 2, 29), 0.1)
    assert dt_ == dt.datetime(2024, 1, 2, 3, 4, 5)  # MaxCompute prints DATETIME to the second
    assert str(ts) == "2024-01-02 03:04:05.123456"
    _, truncated = result_csv(Result(), limit=1)
    assert truncated
