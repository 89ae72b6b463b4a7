"""Airflow must discover the provider through its entry point, and every class it lists must import."""

from __future__ import annotations

import importlib
import json

import pytest

from airflow_provider_polar_mc.get_provider_info import get_provider_info


def _import_path(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_providers_manager_discovers_the_provider():
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert "airflow-provider-polar-mc" in providers
    info = providers["airflow-provider-polar-mc"]
    assert info.version == get_provider_info()["versions"][0]


def test_every_listed_class_imports():
    info = get_provider_info()
    paths = [ct["hook-class-name"] for ct in info["connection-types"]]
    for group in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[group]:
            paths += entry.get("python-modules", []) if group != "triggers" else entry.get("python-modules", [])
    for path in paths:
        if path.count(".") and path[path.rfind(".") + 1 :][0].isupper():
            assert _import_path(path) is not None
        else:
            assert importlib.import_module(path) is not None


def test_the_timetable_plugin_loads_once_without_errors():
    """The plugin registers ContinuousDataIntervalTimetable; a second copy of the package metadata on
    sys.path (setuptools' *.egg-info in the checkout) would make Airflow report it "already registered"."""
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert [p.name for p in plugins].count("polar_mc") == 1
    assert not any("polar_mc" in f"{key} {value}" for key, value in errors.items()), errors
    assert "airflow_provider_polar_mc.timetables.ContinuousDataIntervalTimetable" in plugins_manager.get_timetables_plugins()


def test_the_connection_form_has_fields_for_ssl_and_timeouts(monkeypatch):
    """Airflow 3 reads the form from the provider info (conn-fields), without importing the hook; the
    hook reads the flat extras those fields store."""
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_polar_mc.hooks.polardb import PolarDBMySqlHook

    manager = ProvidersManager()
    widgets = {name.removeprefix("extra__polardb_mysql__"): w for name, w in manager.connection_form_widgets.items()
               if name.startswith("extra__polardb_mysql__")}  # fmt: skip
    assert set(widgets) == {"ssl_ca", "ssl_cert", "ssl_key", "connect_timeout", "read_timeout", "write_timeout", "charset"}
    assert widgets["connect_timeout"].field["value"] == 10
    assert manager.field_behaviours["polardb_mysql"]["relabeling"] == {"schema": "Database"}

    # The connection as the form stores it: the fields as flat extras.
    monkeypatch.setenv("AIRFLOW_CONN_POLAR_FORM", json.dumps({"conn_type": "polardb_mysql", "host": "h", "port": 3306,
                       "login": "u", "extra": {"ssl_ca": "/ca.pem", "connect_timeout": 3, "read_timeout": 30}}))  # fmt: skip
    endpoint = PolarDBMySqlHook(polardb_conn_id="polar_form").get_endpoint()
    assert (endpoint.ssl, endpoint.connect_timeout, endpoint.read_timeout) == ({"ca": "/ca.pem"}, 3.0, 30.0)


def test_maxcompute_asset_uris_are_normalised_by_the_provider():
    from airflow.sdk import Asset

    assert Asset("maxcompute://Demo/ODS_Orders").uri == "maxcompute://demo/ods_orders"
    with pytest.raises(ValueError, match="maxcompute://<project>/<table>"):
        Asset("maxcompute://demo/a/b")
