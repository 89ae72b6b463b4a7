"""What every migration operator shares: the spec argument, its loading, and the one error path.

Operators import the migration core (pyodps, connectorx, ...) inside ``execute_migration``, not at
module level: DAG files are parsed often and every task re-parses its DAG, so the import costs ~2.5 s
less each time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_polar_mc.core import cancellation
from airflow_provider_polar_mc.exceptions import ConfigError, PolarMcError
from airflow_provider_polar_mc.spec import MigrationSpec

T = TypeVar("T")


def load_spec(spec: str | Path | Mapping[str, Any] | MigrationSpec) -> MigrationSpec:
    """A spec given as a YAML path, YAML text, a dict or a MigrationSpec (validated when built)."""
    if isinstance(spec, MigrationSpec):
        return spec
    if isinstance(spec, Mapping):
        return MigrationSpec.from_dict(dict(spec))
    return MigrationSpec.from_yaml(spec)


def fail_unless_retryable(exc: PolarMcError) -> None:
    """The one error path of every task (operators, sensors): an error that retrying cannot fix
    (``retryable = False``, see :mod:`~airflow_provider_polar_mc.exceptions`) fails the task at once,
    its message naming the fix, instead of spending the task's retries; a retryable one is re-raised
    for Airflow to retry. Drivers' own errors (a dropped connection) never reach here: they are retried."""
    if exc.retryable:
        raise exc
    raise AirflowFailException(str(exc)) from exc


def resume_after_lost_connections(fn: Callable[[], T], spec: MigrationSpec, what: str, log: Callable[[str], None]) -> T:
    """``fn`` (a task's work), run again after a connection lost mid-way (the source cut under a read,
    MaxCompute gone mid-stream) for up to ``retry.connection_minutes``: every stage resumes from its
    checkpoints, as an Airflow retry would, without waiting for one. Beyond the window,
    ``RetryWindowSpent`` names the side that stayed away."""
    import requests

    from airflow_provider_polar_mc.core.retry import is_connection_error, window_spent
    from airflow_provider_polar_mc.hooks import resolve

    policy = resolve.retry_policy(spec)

    def attempt() -> T:
        cancellation.check()
        return fn()

    try:
        return policy.call(attempt, log=lambda line: log(f"{line}; resuming from the checkpoints"), what="connection")
    except Exception as exc:
        if is_connection_error(exc):
            side = "MaxCompute" if isinstance(exc, requests.exceptions.RequestException) else "the source"
            raise window_spent(exc, side, what, policy) from exc
        raise


class MigrationOperator(BaseOperator):
    """Base of the migration operators: ``spec`` is a YAML path (templated), a dict or a MigrationSpec;
    ``spec_overrides`` (templated) one run's choices instead of the spec's (``conflict_mode``,
    ``accepted_warnings``: the setup DAG's trigger form).

    Subclasses implement :meth:`execute_migration`; ``execute`` runs it through the one error path.
    """

    template_fields: Sequence[str] = ("spec", "spec_overrides")

    def __init__(
        self,
        *,
        spec: str | Path | Mapping[str, Any] | MigrationSpec,
        spec_overrides: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = str(spec) if isinstance(spec, Path) else spec
        self.spec_overrides = spec_overrides

    def migration_spec(self) -> MigrationSpec:
        spec = load_spec(self.spec)
        if self.spec_overrides:
            if not isinstance(self.spec_overrides, Mapping):
                raise ConfigError(f"spec_overrides must be a mapping, got {type(self.spec_overrides).__name__}")
            spec = spec.with_run_overrides(self.spec_overrides)
            self.log.info("this run's choices: %s", {k: v for k, v in self.spec_overrides.items() if v not in (None, "")})
        return spec

    def execute(self, context: Any) -> Any:
        cancellation.reset()
        try:
            return self._execute_resuming(context)
        except PolarMcError as exc:
            fail_unless_retryable(exc)

    def _execute_resuming(self, context: Any) -> Any:
        from airflow_provider_polar_mc.lineage import TaskLineage

        def attempt() -> Any:
            self.lineage = TaskLineage()  # what this run reads and writes, as subclasses record it
            return self.execute_migration(context)

        return resume_after_lost_connections(attempt, self.migration_spec(), f"task {self.task_id}", self.log.warning)

    def on_kill(self) -> None:
        """Airflow kills the task (SIGTERM, ``execution_timeout``, marked failed or cleared): stop the
        MaxCompute instances it runs and its binlog reads, and start no further key range, Tunnel
        block or commit, so nothing keeps running after it; the checkpoints make the retry resume."""
        stopped = cancellation.stop_all()
        self.log.warning("task killed: stopped %s; no further range, block or commit starts",
                         ", ".join(stopped) if stopped else "no MaxCompute instance or binlog read (none was running)")  # fmt: skip

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Airflow's OpenLineage provider asks this after the task (also after a failure, for what it
        recorded until then): the source tables read and the MaxCompute tables written, with their
        schemas and the rows written (docs/lineage.md)."""
        from airflow_provider_polar_mc.lineage import TaskLineage, to_operator_lineage

        return to_operator_lineage(getattr(self, "lineage", None) or TaskLineage())

    def execute_migration(self, context: Any) -> Any:
        raise NotImplementedError
