"""PrecheckOperator: run every precheck; fail the task when one fails (or warns, unless accepted)."""

from __future__ import annotations

from typing import Any

from airflow_provider_polar_mc.exceptions import PrecheckFailed
from airflow_provider_polar_mc.operators._base import MigrationOperator


class PrecheckOperator(MigrationOperator):
    """Checks both ends and the spec before anything moves.

    Pushes the report (``PrecheckReport.to_dict()``) as the task's return value and logs it as a
    table. Fails without retrying (``PrecheckFailed``) when a check failed or warned without
    being listed in the spec's ``accepted_warnings``: retrying cannot fix configuration.
    """

    ui_color = "#f0e4ff"

    def execute_migration(self, context: Any) -> dict[str, Any]:
        from airflow_provider_polar_mc.core.precheck import run_prechecks
        from airflow_provider_polar_mc.hooks import resolve
        spec = self.migration_spec()
        report = run_prechecks(
            spec, resolve.source_endpoint(spec), lambda: resolve.destination(spec), log=self.log.info
        )
        self.log.info("\n%s", report.render())
        if not report.passed:
            ids = sorted({r.check_id for r in report.blocking})
            raise PrecheckFailed(
                f"precheck of migration {spec.name} did not pass: {', '.join(ids)}. "
                "Each failing check's fix is in the log above; warnings can be accepted with "
                "accepted_warnings in the spec.",
                ids,
            )
        return report.to_dict()
