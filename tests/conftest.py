"""Shared fixtures: each lives in tests/fixtures/ and is registered here as a plugin.

``temp_root`` comes first: it moves the temp folder into a per-session directory (removed at the end)
before anything else creates a temporary file or imports Airflow.
"""

pytest_plugins = [
    "tests.fixtures.temp_root",
    "tests.fixtures.emulator",
    "tests.fixtures.mysql_server",
    "tests.fixtures.airflow_home",
    "tests.fixtures.security_tally",
    "tests.fixtures.fault_tally",
    "tests.fixtures.fresh_install",
]
