"""Shared fixtures: each lives in tests/fixtures/ and is registered here as a plugin."""

pytest_plugins = [
    "tests.fixtures.emulator",
    "tests.fixtures.mysql_server",
    "tests.fixtures.airflow_home",
]
