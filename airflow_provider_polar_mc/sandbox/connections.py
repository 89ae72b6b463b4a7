"""Airflow connection documents (for ``AIRFLOW_CONN_<ID>`` variables) pointing at the sandbox servers."""

from __future__ import annotations

import json

from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess
from airflow_provider_polar_mc.sandbox.mysql import PrivateMySqlServer


def polardb_connection(server: PrivateMySqlServer, user: str | None = None, password: str | None = None) -> str:
    return json.dumps(
        {
            "conn_type": "polardb_mysql",
            "host": server.host,
            "port": server.port,
            "login": user if user is not None else server.user,
            "password": password if password is not None else server.password,
        }
    )


def maxcompute_connection(emulator: EmulatorProcess) -> str:
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
