"""Helpers for integration tests: Airflow connections pointing at the private server and the emulator."""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection


@pytest.fixture
def connections(monkeypatch, mysql_server, emulator):
    """AIRFLOW_CONN_* for a source connection id and a MaxCompute connection id, unique per test."""
    suffix = uuid.uuid4().hex[:8]
    source_id, mc_id = f"polar_{suffix}", f"mc_{suffix}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", polardb_connection(mysql_server))
    monkeypatch.setenv(f"AIRFLOW_CONN_{mc_id.upper()}", maxcompute_connection(emulator))

    def use_source(server, user: str = "root", password: str = "") -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{source_id.upper()}", polardb_connection(server, user, password))

    class Connections:
        source = source_id
        destination = mc_id
        set_source = staticmethod(use_source)

    return Connections
