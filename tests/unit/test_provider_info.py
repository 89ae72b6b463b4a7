"""Airflow must discover the provider through its entry point, and every class it lists must import."""

from __future__ import annotations

import importlib

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
