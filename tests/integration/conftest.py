"""Helpers for integration tests: Airflow connections pointing at the private server and the emulator."""

from __future__ import annotations

import json
import uuid

import pytest


def polardb_conn_json(server, user: str = "root", password: str = "") -> str:
    return json.dumps(
        {"conn_type": "polardb_mysql", "host": server.host, "port": server.port, "login": user, "password": password}
    )


def maxcompute_conn_json(emulator) -> str:
    return json.dumps(
        {
            "conn_type": "maxcompute",
            "extra": {
                "access_key_id": emulator.access_id,
                "access_key_secret": emulator.access_key,
                "project": emulator.project,
                "endpoint": emulator.endpoint,
            },
        }
    )


@pytest.fixture
def connections(monkeypatch, mysql_server, emulator):
    """AIRFLOW_CONN_* for a source connection id and a MaxCompute connection id, unique per test."""
    suffix = uuid.uuid4().hex[:8]
    source_id, mc_id = f"polar_{suffix}", f"mc_{suffix}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", polardb_conn_json(mysql_server))
    monkeypatch.setenv(f"AIRFLOW_CONN_{mc_id.upper()}", maxcompute_conn_json(emulator))

    def use_source(server, user: str = "root", password: str = "") -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", polardb_conn_json(server, user, password))

    class Connections:
        source = source_id
        destination = mc_id
        set_source = staticmethod(use_source)

    return Connections
