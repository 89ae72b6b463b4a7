"""The JSON Schema of a spec file, from the models (``polar-mc spec-schema``), for editors.

It accepts every valid document the loader accepts (``tables: all`` or a list, a table as a plain name
or a mapping, an empty value meaning the default) and refuses unknown keys, unknown choices, numbers
out of range and names that break their pattern. What only code can check (filter syntax, the replica
pattern, collisions, cross-field rules) is left to the loader: an editor flags less than
``MigrationSpec.from_yaml`` refuses, never more. No Airflow here.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_polar_mc.spec.models import MigrationSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a migration spec document."""
    schema = MigrationSpec.model_json_schema(by_alias=True, mode="validation")
    for definition in [schema, *schema.get("$defs", {}).values()]:
        _empty_means_default(definition)
        _plain_descriptions(definition)
    schema["description"] = ("A polar-mc migration spec: one YAML file per migration, PolarDB for MySQL / MySQL 8 / "
                             "MariaDB into MaxCompute. Reference: docs/spec.md; `polar-mc precheck --spec FILE` checks "
                             "what a schema cannot (filters, collisions, the source itself).")
    return {"$schema": DIALECT, **schema}


def _plain_descriptions(definition: dict[str, Any]) -> None:
    """Docstrings quote with reST's ``double`` backticks; an editor's hover shows Markdown."""
    for holder in [definition, *definition.get("properties", {}).values()]:
        if isinstance(holder.get("description"), str):
            holder["description"] = holder["description"].replace("``", "`")


def _empty_means_default(definition: dict[str, Any]) -> None:
    """An optional key may be given without a value (YAML null): the loader takes it as the default."""
    required = set(definition.get("required", ()))
    for name, prop in definition.get("properties", {}).items():
        if name in required or _allows_null(prop):
            continue
        notes = {key: prop.pop(key) for key in ("title", "description", "default") if key in prop}
        definition["properties"][name] = {**notes, "anyOf": [prop, {"type": "null"}]}


def _allows_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(option.get("type") == "null" for option in prop.get("anyOf", ()))


__all__ = ["DIALECT", "spec_json_schema"]
