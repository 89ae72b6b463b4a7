"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Lists grow as hooks, operators, sensors and triggers land; the test in tests/unit/test_provider_info.py
checks every listed class path imports.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_polar_mc import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-polar-mc",
        "name": "PolarDB for MySQL to MaxCompute",
        "description": "Migrate PolarDB for MySQL / MySQL into Alibaba Cloud MaxCompute the way DTS does: "
        "schema, full load and binlog increments, exactly once.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "PolarDB for MySQL to MaxCompute",
                # The integration's product documentation (this provider is not published yet; its docs are the README).
                "external-doc-url": "https://www.alibabacloud.com/help/en/maxcompute/",
                "tags": ["alibaba"],
            }
        ],
        "hooks": [
            {
                "integration-name": "PolarDB for MySQL to MaxCompute",
                "python-modules": ["airflow_provider_polar_mc.hooks.polardb"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "polardb_mysql",
                "hook-class-name": "airflow_provider_polar_mc.hooks.polardb.PolarDBMySqlHook",
                "hook-name": "PolarDB for MySQL",
                # The connection form's fields for the extras the hook reads (stored as flat extras).
                "conn-fields": {
                    "ssl_ca": {"label": "SSL CA file", "description": "Path of the CA certificate (PEM) on the workers; "
                               "turns on TLS with server verification.", "schema": {"type": ["string", "null"]}},
                    "ssl_cert": {"label": "SSL client certificate", "schema": {"type": ["string", "null"]}},
                    "ssl_key": {"label": "SSL client key", "schema": {"type": ["string", "null"]}},
                    "connect_timeout": {"label": "Connect timeout (s)", "description": "TCP connect, greeting and login "
                                        "together; also bounds the form's Test button.",
                                        "schema": {"type": ["number", "null"], "default": 10, "exclusiveMinimum": 0}},
                    "read_timeout": {"label": "Read timeout (s)", "schema": {"type": ["number", "null"], "exclusiveMinimum": 0}},
                    "write_timeout": {"label": "Write timeout (s)", "schema": {"type": ["number", "null"], "exclusiveMinimum": 0}},
                    "charset": {"label": "Character set", "schema": {"type": ["string", "null"], "default": "utf8mb4"}},
                },
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {"schema": "Database"},
                    "placeholders": {"host": "pc-xxxx.rwlb.rds.aliyuncs.com", "port": "3306"},
                },
            }
        ],
        "operators": [
            {
                "integration-name": "PolarDB for MySQL to MaxCompute",
                "python-modules": [
                    "airflow_provider_polar_mc.operators.precheck",
                    "airflow_provider_polar_mc.operators.schema",
                    "airflow_provider_polar_mc.operators.full_load",
                    "airflow_provider_polar_mc.operators.incremental",
                    "airflow_provider_polar_mc.operators.merge",
                    "airflow_provider_polar_mc.operators.resync",
                    "airflow_provider_polar_mc.operators.validate",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "PolarDB for MySQL to MaxCompute",
                "python-modules": ["airflow_provider_polar_mc.sensors.binlog"],
            }
        ],
        "asset-uris": [
            {
                "schemes": ["maxcompute"],
                "handler": "airflow_provider_polar_mc.assets.sanitize_uri",
                "to_openlineage_converter": "airflow_provider_polar_mc.lineage.convert_asset_to_openlineage",
            }
        ],
        "triggers": [
            {
                "integration-name": "PolarDB for MySQL to MaxCompute",
                "python-modules": ["airflow_provider_polar_mc.triggers.binlog"],
            }
        ],
        "config": {
            "polar_mc": {
                "description": "Where dags/polar_mc_migrations.py finds the migration specs.",
                "options": {
                    "spec_dir": {
                        "description": "Folder of migration specs (*.yaml). Empty: $POLAR_MC_SPEC_DIR, else the "
                        "folder migrations/ beside the DAG file.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/polar_mc/migrations",
                        "default": "",
                    },
                },
            },
        },
    }
