"""The migration spec: every option of a DTS migration task, validated when built.

* :mod:`.models`: the frozen pydantic models (``MigrationSpec`` and its sections), ``RANGES``;
* :mod:`.fields`: the value types they are declared with (constraints, wording, small validators);
* :mod:`.checks`: checks of single values (``filter_problem``, ``replica_pattern_problem``, ...);
* :mod:`.errors`: pydantic's ``ValidationError`` -> one ``SpecError`` with every problem and its path;
* :mod:`.schema`: the JSON Schema of a spec file (``polar-mc spec-schema``).

Which source tables a spec selects is the core's business (``core.selection``: ``select_tables``,
``missing_objects``, ``why_nothing_selected``); its value type ``TableSelection`` is re-exported here for
the modules that always imported it from the spec. Nothing in this package imports Airflow.
"""

from airflow_provider_polar_mc.core.selection import TableSelection
from airflow_provider_polar_mc.exceptions import SourceMismatch, SpecError, SpecProblem
from airflow_provider_polar_mc.spec.checks import filter_problem, replica_pattern_problem
from airflow_provider_polar_mc.spec.fields import (
    CONFLICT_MODES,
    DATETIME_TYPES,
    DEFAULT_PARTITION,
    ENVIRONMENT_TAG_MAX_LENGTH,
    JSON_TYPES,
    MIGRATION_TYPES,
    ConflictMode,
    MigrationType,
)
from airflow_provider_polar_mc.spec.models import (
    RANGES,
    BatchRename,
    DestinationSpec,
    FullLoadSpec,
    FullThrottle,
    HeartbeatSpec,
    IncrementalSpec,
    IncrementalThrottle,
    MergeSpec,
    MigrationSpec,
    ObjectSpec,
    RetrySpec,
    SourceSpec,
    TableSpec,
    ThrottleSpec,
)
from airflow_provider_polar_mc.spec.schema import spec_json_schema

__all__ = [
    "CONFLICT_MODES", "DATETIME_TYPES", "DEFAULT_PARTITION", "ENVIRONMENT_TAG_MAX_LENGTH", "JSON_TYPES",
    "MIGRATION_TYPES", "RANGES", "BatchRename", "ConflictMode", "DestinationSpec", "FullLoadSpec", "FullThrottle",
    "HeartbeatSpec", "IncrementalSpec", "IncrementalThrottle", "MergeSpec", "MigrationSpec", "MigrationType",
    "ObjectSpec", "RetrySpec", "SourceMismatch", "SourceSpec", "SpecError", "SpecProblem", "TableSelection",
    "TableSpec", "ThrottleSpec", "filter_problem", "replica_pattern_problem", "spec_json_schema",
]
