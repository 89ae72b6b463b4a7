"""Every error the provider raises on purpose, in one place.

Two families, because Airflow treats them differently:

* **Retrying cannot help** (bad configuration, a failed precheck, DDL we cannot replay, a source that
  is no longer the server we started on, a checkpoint that disagrees with what is being written).
  Operators turn these into ``AirflowFailException`` so the task fails at once instead of burning
  retries. They derive from :class:`PolarMcError` with ``retryable = False``.
* **Retrying may help** (a dropped connection, MaxCompute throttling, an expired tunnel session):
  the task retries these itself within the spec's ``retry`` windows (core/retry.py); once a window is
  spent it raises :class:`RetryWindowSpent`, which names the side and the window. A subclass that may
  succeed on an Airflow retry sets ``retryable = True``.

This module imports nothing from Airflow: the core and the spec raise these without a scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class PolarMcError(Exception):
    """Base of every error raised on purpose by this provider.

    ``retryable`` tells operators whether to let Airflow retry (True) or fail the task at once (False).
    """

    retryable: bool = False


class ConfigError(PolarMcError, ValueError):
    """The configuration (the migration spec, a connection's extras, an operator argument) is invalid.

    Raised when the configuration is built or first used, before any data moves. Retrying cannot help:
    the configuration has to be changed.
    """


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a migration spec: ``path`` locates the field (``objects[3].filter``,
    ``throttle.full.rows_per_s``; empty for the document itself), ``message`` says what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ConfigError):
    """The migration spec is invalid; ``problems`` lists every problem found, each with its field path.

    Raised once per spec by ``MigrationSpec.from_dict`` / ``from_yaml`` after the whole document has
    been checked, so one run of the precheck (or of the DAG parser) shows everything to fix; loading
    YAML also refuses a key given twice, a file that is not UTF-8, over 1 MiB, nested too deeply or
    expanding too far through aliases (``spec_yaml``). Its subclass :class:`SourceMismatch` is raised by
    ``core.selection.select_tables`` when objects the spec names are missing from the source. Retrying
    cannot help.
    """

    header = "invalid migration spec{where}"

    def __init__(self, problems: Iterable[SpecProblem], source: str | None = None):
        self.problems: list[SpecProblem] = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        header = f"{self.header.format(where=where)} ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


class SourceMismatch(SpecError):
    """The spec is well-formed but does not match the source: a database or an explicitly listed table
    it names does not exist (or is invisible to the account), or it selects no table at all.

    Raised by ``core.selection.select_tables`` (and ``polar-mc plan``) with one problem per object,
    each with a "did you mean" when a similar name exists. Retrying cannot help: correct the spec, or
    create the objects / grant the account access to them.
    """

    header = "the migration spec{where} does not match the source"


class ConnectionNotUsable(ConfigError):
    """An Airflow connection the spec names cannot be used: it is not defined anywhere, its definition
    (an ``AIRFLOW_CONN_<ID>`` variable's JSON or URI) cannot be read, or an extra has a wrong value.

    Raised when the connection is first looked up, before connecting; the message names the connection
    id, the spec field or variable, and the fix, never the connection's secrets. Retrying cannot help.
    """

    def __init__(self, message: str, conn_id: str | None = None):
        super().__init__(message)
        self.conn_id = conn_id


class SourceUnreachable(PolarMcError):
    """One attempt to reach the source database failed (``polar-mc``, the connection form's Test button).

    The message names host:port, the account and the cause (refused, timed out, access denied, ...)
    with the fix. Operators never raise it: inside tasks the driver's own errors are retried within
    ``retry.connection_minutes``.
    """

    retryable = True

    def __init__(self, message: str, host: str | None = None, port: int | None = None):
        super().__init__(message)
        self.host = host
        self.port = port


class PrecheckFailed(PolarMcError):
    """At least one precheck failed (or warned without the warning being listed in
    ``accepted_warnings``); ``check_ids`` names the blocking checks.

    Raised by ``PrecheckOperator`` after the report (each check's fix) is logged, before any
    destination object is created. Retrying cannot help until the source, the destination or the spec
    is changed as each result's fix describes.
    """

    def __init__(self, message: str, check_ids: Iterable[str] = ()):
        super().__init__(message)
        self.check_ids = sorted(set(check_ids))


class SchemaConflict(PolarMcError):
    """A destination table exists with a schema that the migration cannot write into.

    Raised by the schema migration (``core.destination.schema``) before it creates anything for the
    table. Retrying cannot help: drop or rename the destination table, map the source table to another
    name (``target`` / ``batch_rename``), or make the existing table's columns match.
    """


class ReplicaDiffers(PolarMcError):
    """Validation found tables whose MaxCompute replica (or base) differs from the source.

    Raised by ``ValidateOperator`` with ``summaries`` (counts and the first differences per table).
    Retrying cannot help: the data is wrong until the cause is found (a change applied outside the
    migration, a DDL not followed) and the table resynced.
    """

    def __init__(self, message: str, summaries: Iterable[object] = ()):
        super().__init__(message)
        self.summaries = list(summaries)


class IntervalNotReady(PolarMcError):
    """A step needs an earlier step of the same interval that has not been done yet (the merge of an
    interval whose incremental load has not run).

    Retrying within the task's retries does not make the earlier step run; the message names it.
    """


class UnsupportedType(ConfigError):
    """A source column has a type with no MaxCompute mapping (see ``core.typemap``).

    Raised by the type mapping, during the precheck and schema migration. Retrying cannot help: exclude
    the table or the column, or change the source type.
    """


class UnsupportedDDL(PolarMcError):
    """The binlog carries a DDL statement the incremental migration cannot replay in MaxCompute (for
    example a column type change MaxCompute does not allow, or a rename of a migrated table).

    Raised by the incremental load at the statement's coordinate, before any row after it is written,
    so nothing past the DDL reaches MaxCompute. Retrying cannot help: apply the change in MaxCompute by
    hand (or re-run the setup for the table) and record that the DDL was handled.
    """

    def __init__(self, message: str, statement: str | None = None, coordinate: object | None = None):
        super().__init__(message)
        self.statement = statement
        self.coordinate = coordinate


class BinlogUnavailable(PolarMcError):
    """A binlog file the next interval needs is no longer on the server (purged or expired).

    Raised by the binlog sensor or the incremental load; the message names the missing file. Retrying
    cannot help: the changes in that file are gone, so re-run the full load (setup) for the affected
    tables and lengthen the binlog retention.
    """

    def __init__(self, message: str, missing_file: str | None = None):
        super().__init__(message)
        self.missing_file = missing_file


class SourceChanged(PolarMcError):
    """The source server is not the one the recorded coordinates belong to: its identity
    (``server_uuid`` / ``server_id``) changed, or a recorded coordinate lies beyond the server's last
    binlog position (``RESET MASTER``, failover to a fresh server, restore from a backup).

    Raised before reading any binlog event, because comparing coordinates across servers silently
    skips or repeats changes. Retrying cannot help: re-run the full load for the migration (or
    confirm the new identity explicitly once the data is known to be consistent).
    """

    def __init__(self, message: str, expected: object | None = None, actual: object | None = None):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class CheckpointConflict(PolarMcError):
    """The checkpoint store disagrees with what a run is about to record: the interval's end coordinate
    was already recorded with a different value, intervals do not chain, or the spec that wrote the
    checkpoints differs in a way that changes the data (tables, filters, mapping).

    Raised before any data is written, because accepting it would break exactly-once delivery.
    Retrying cannot help: inspect the checkpoints named in the message.
    """


class ResyncError(PolarMcError):
    """A resync (core/resync.py) cannot make a table's MaxCompute tables take its new schema (a
    ``_log`` column whose type the change widened beyond it); the message names the column and the
    way out. Retrying cannot help."""


class ResyncPending(PolarMcError):
    """A batch reached an interval after a resync started, before the resync recorded its coordinate
    (a few seconds): Airflow's retry runs it again once it has."""

    retryable = True


class TaskStopped(PolarMcError):
    """The task was killed (Airflow called ``on_kill``: a SIGTERM, ``execution_timeout``, the task marked
    failed or cleared) and its running MaxCompute instances and binlog reads were stopped
    (``core.cancellation``). Re-raised for Airflow, which decides whether the try is retried: every
    stage resumes from its checkpoints, so a retry writes nothing twice."""

    retryable = True


class RetryWindowSpent(PolarMcError):
    """The source or MaxCompute kept failing for longer than the spec's retry window
    (``retry.connection_minutes`` for a lost connection, ``retry.other_minutes`` for MaxCompute's 5xx
    answers): the task gives up, as DTS does. Nothing half-written is visible: uploads not committed
    stay invisible and the checkpoints hold what was committed, so once the cause is fixed a cleared
    task resumes where this one stopped. The message names the side, the window, the last error and
    the fix."""

    def __init__(self, message: str, side: str, window: str):
        super().__init__(message)
        self.side = side
        self.window = window
