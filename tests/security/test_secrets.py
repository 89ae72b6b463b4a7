"""No secret in any output: a whole migration with a known source password and AccessKey secret, and the
ways it fails (wrong password, unreachable server, wrong key), then every log line (all loggers at
DEBUG, stdout and stderr), every return value (XCom), every exception's text and repr, the rendered
template fields, the command line's output and the emulator's log are searched for both secrets."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import pytest

from airflow_provider_polar_mc.cli import main as polar_mc
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.validate import compare_migration
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.precheck import PrecheckOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.operators.validate import ValidateOperator
from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection
from airflow_provider_polar_mc.sandbox.mysql import free_port
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at

pytestmark = pytest.mark.integration

FIRST = dt.datetime(2026, 1, 1, 0, tzinfo=dt.timezone.utc)


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad format string is still text to search
            self.lines.append(str(record.msg))
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


@pytest.mark.security_case("secrets")
def test_no_secret_in_logs_xcom_errors_templates_or_the_emulator_log(
    monkeypatch, capfd, tmp_path, mysql_server, emulator
):
    password = f"Pw-{uuid.uuid4().hex}"
    database = f"sec_{uuid.uuid4().hex[:6]}"
    account = f"mig_{uuid.uuid4().hex[:6]}"
    mysql_server.execute(
        f"CREATE DATABASE {database}",
        f"CREATE TABLE {database}.t (id INT PRIMARY KEY, v VARCHAR(20))",
        f"INSERT INTO {database}.t VALUES (1, 'a'), (2, 'b')",
        f"CREATE USER '{account}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON {database}.* TO '{account}'@'%'",
        f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{account}'@'%'",
    )
    source_id, mc_id = f"src_{uuid.uuid4().hex[:6]}", f"mc_{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", polardb_connection(mysql_server, account, password))
    monkeypatch.setenv(f"AIRFLOW_CONN_{mc_id.upper()}", maxcompute_connection(emulator))
    spec = {
        "name": f"sec_{uuid.uuid4().hex[:6]}",
        "source": {"conn_id": source_id, "databases": [database]},
        "destination": {"conn_id": mc_id},
        "batch_rename": {"prefix": f"s{uuid.uuid4().hex[:6]}_"},
        "partition": ["year", "month", "day", "hour"],
        "incremental": {"start_date": FIRST.isoformat(), "settle_seconds": 0},
    }
    secrets = {"source password": password, "AccessKey secret": emulator.access_key}
    handler = Everything()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    outputs: list[str] = []
    try:
        context = {"data_interval_start": FIRST, "data_interval_end": FIRST + dt.timedelta(hours=1)}
        operators = [PrecheckOperator(task_id="precheck", spec=spec), SchemaMigrateOperator(task_id="schema", spec=spec),
                     FullLoadOperator(task_id="full", spec=spec)]
        for operator in operators:
            if isinstance(operator, FullLoadOperator):
                # The snapshot "at" 1 s before the interval, the change below "in" it (time-true interval
                # ends, docs/interval-boundaries.md; tests/integration/session_clock.py).
                migration = load_spec(spec)
                snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), mysql_server,
                            FIRST.timestamp() - 1)
            outputs.append(json.dumps(operator.execute(context), default=str))
            operator.render_template_fields(context)
            outputs += [repr(getattr(operator, field)) for field in operator.template_fields]
        execute_at(mysql_server, FIRST.timestamp() + 10, f"INSERT INTO {database}.t VALUES (3, 'c')")
        outputs.append(json.dumps(BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(context), default=str))
        outputs.append(json.dumps(IncrementalLoadOperator(task_id="load", spec=spec).execute(context), default=str))
        outputs.append(json.dumps(MergeOperator(task_id="merge", spec=spec).execute(context), default=str))
        outputs.append(json.dumps(ValidateOperator(task_id="validate", spec=spec).execute(context), default=str))
        migration = load_spec(spec)
        outputs.append(repr(resolve.source_endpoint(migration)))
        outputs.append(repr(compare_migration(migration, resolve.source_endpoint(migration), resolve.destination(migration))))

        # The ways it fails: each error's text and repr are outputs too.
        # (A task retries an unreachable server for retry.connection_minutes: only one-attempt paths there.)
        failures = [
            (polardb_connection(mysql_server, account, password + "x"), (PrecheckOperator, FullLoadOperator)),
            (polardb_connection(mysql_server, account, password).replace(str(mysql_server.port), str(free_port())),
             (PrecheckOperator,)),
        ]
        for definition, kinds in failures:
            monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", definition)
            for operator in (kind(task_id="failing", spec=spec) for kind in kinds):
                try:
                    operator.execute(context)
                except BaseException as error:  # noqa: BLE001 - every failure's text is searched
                    outputs += [str(error), repr(error), repr(error.__cause__)]
            spec_path = tmp_path / "spec.yaml"
            spec_path.write_text(json.dumps(spec))
            for arguments in (["precheck", "--spec", str(spec_path)], ["precheck", "-v", "--spec", str(spec_path)],
                              ["plan", "-v", "--spec", str(spec_path)]):
                assert polar_mc(arguments) in (1, 2)
        monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", polardb_connection(mysql_server, account, password))
        monkeypatch.setenv(f"AIRFLOW_CONN_{mc_id.upper()}",
                           maxcompute_connection(emulator).replace(emulator.access_key, emulator.access_key[::-1]))
        try:
            PrecheckOperator(task_id="wrong_key", spec=spec).execute(context)
        except BaseException as error:  # noqa: BLE001
            outputs += [str(error), repr(error)]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        mysql_server.execute(f"DROP DATABASE {database}", f"DROP USER '{account}'@'%'")
    captured = capfd.readouterr()
    places = {
        "log records": "\n".join(handler.lines),
        "stdout": captured.out,
        "stderr": captured.err,
        "return values, errors and template fields": "\n".join(outputs),
        "emulator log": emulator.log_path.read_text(errors="replace"),
    }
    assert len(handler.lines) > 50 and "precheck" in places["return values, errors and template fields"]
    found = [f"{what} in {where}" for where, text in places.items() for what, secret in secrets.items() if secret in text]
    assert not found, f"LEAK: {found}"
