"""What every migration operator shares: the spec argument and its loading.

Operators import the migration core (pyodps, connectorx, ...) inside ``execute``, not at module level:
DAG files are parsed often and every task re-parses its DAG, so the import costs ~2.5 s less each time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_polar_mc.spec import MigrationSpec


def load_spec(spec: str | Path | Mapping[str, Any] | MigrationSpec) -> MigrationSpec:
    """A spec given as a YAML path, YAML text, a dict or a MigrationSpec (validated when built)."""
    if isinstance(spec, MigrationSpec):
        return spec
    if isinstance(spec, Mapping):
        return MigrationSpec.from_dict(dict(spec))
    return MigrationSpec.from_yaml(spec)


class MigrationOperator(BaseOperator):
    """Base of the migration operators: ``spec`` is a YAML path (templated), a dict or a MigrationSpec."""

    template_fields: Sequence[str] = ("spec",)

    def __init__(self, *, spec: str | Path | Mapping[str, Any] | MigrationSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = str(spec) if isinstance(spec, Path) else spec

    def migration_spec(self) -> MigrationSpec:
        return load_spec(self.spec)
