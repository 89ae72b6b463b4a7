"""SQL instances: what ``POST /projects/{p}/instances`` creates, runs and later reports on.

An instance holds one SQL task. It runs on a small thread pool against :class:`Storage` through the
SQL translator (``sql.run_sql``); status, the error text and a SELECT's result (an Arrow table) stay
in memory, keyed by instance id, for the status/result endpoints and the instance tunnel. They do not
survive a restart (MaxCompute keeps them; pyodps clients re-run rather than re-read old instances).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

import pyarrow as pa
import pyarrow.compute as pc

from .errors import EmulatorError
from .storage import NoSuchTable, Storage, StorageError

logger = logging.getLogger(__name__)

# MaxCompute returns at most this many rows through the (non-tunnel) result API.
RESULT_ROW_LIMIT = 10000
# Memory bounds of a long-running emulator: the newest finished instances keep their SELECT result,
# and only so many instances are remembered at all (MaxCompute also expires them, after days).
KEEP_RESULTS = 64
KEEP_INSTANCES = 5000

RUNNING, TERMINATED = "Running", "Terminated"
WAITING, TASK_RUNNING, SUCCESS, FAILED, CANCELLED = "Waiting", "Running", "Success", "Failed", "Cancelled"

SqlRunner = Callable[[Storage, str, str, dict[str, str]], Any]


@dataclass
class SqlInstance:
    id: str
    project: str
    task_name: str
    query: str
    settings: dict[str, str]
    job_xml: bytes
    owner: str
    start_time: float
    task_type: str = "SQL"
    status: str = RUNNING
    task_status: str = WAITING
    end_time: float | None = None
    result: Any = None  # QueryResult of a SELECT (has .columns and .table), else None
    error: str | None = None  # "ODPS-xxxxxxx:message" when the task failed
    guid: str = ""  # the job's <Guid> (pyodps's unique_identifier_id), if it had one
    result_expired: bool = False  # the result was dropped to bound memory
    done: threading.Event = field(default_factory=threading.Event)


def new_instance_id() -> str:
    """Ids shaped like MaxCompute's: UTC timestamp with milliseconds, then random letters."""
    now = time.time()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}"
    return stamp + "g" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))


def _text(node: ET.Element | None) -> str:
    return (node.text or "") if node is not None else ""


def parse_job(body: bytes) -> tuple[str, str, str, dict[str, str], bytes]:
    """Read the ``<Instance><Job>`` document pyodps posts: (task type, task name, query, settings, job xml)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise EmulatorError(400, "InvalidArgument", f"malformed instance XML: {exc}") from None
    job = root if root.tag == "Job" else root.find("Job")
    if job is None:
        raise EmulatorError(400, "InvalidArgument", "instance XML has no <Job>")
    tasks_node = job.find("Tasks")
    tasks = list(tasks_node) if tasks_node is not None else []
    if len(tasks) != 1:
        raise EmulatorError(400, "InvalidArgument", f"the emulator runs jobs of exactly one task, got {len(tasks)}")
    task = tasks[0]
    if task.tag != "SQL":
        raise EmulatorError(
            400, "InvalidArgument", f"unsupported task type {task.tag!r}: the emulator runs SQL tasks only"
        )
    settings: dict[str, str] = {}
    for prop in task.findall("./Config/Property"):
        if _text(prop.find("Name")) == "settings":
            try:
                raw = json.loads(_text(prop.find("Value")) or "{}")
            except ValueError:
                raise EmulatorError(400, "InvalidArgument", "task settings are not valid JSON") from None
            for k, v in raw.items():
                settings[str(k)] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return "SQL", _text(task.find("Name")) or "AnonymousSQLTask", _text(task.find("Query")), settings, ET.tostring(job)


def _error_text(exc: BaseException) -> str:
    """The task result of a failed instance, shaped so pyodps's ``parse_instance_error`` finds the code."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, NoSuchTable):
        return f"ODPS-0130131:{message}"
    if isinstance(exc, StorageError):
        return f"{code}:{message}" if str(code).startswith("ODPS-") else f"ODPS-0130071:Semantic analysis exception - {message}"
    if isinstance(code, str) and code.startswith("ODPS-"):
        return f"{code}:{message}"
    return f"ODPS-0010000:System internal error - {type(exc).__name__}: {message}"


def _default_runner() -> SqlRunner:
    # The translator is a separate module; import it late so the server starts (and says why) without it.
    try:
        from .sql import run_sql
    except ImportError as exc:
        reason = str(exc)

        def unavailable(*_args: object) -> None:
            raise EmulatorError(500, "ODPS-0010000", f"System internal error - the SQL engine is not available: {reason}")

        return unavailable
    return run_sql


class InstanceManager:
    """Creates, runs and tracks SQL instances. Thread-safe."""

    def __init__(self, storage: Storage, run_sql: SqlRunner | None = None, workers: int = 4):
        self._storage = storage
        self._run_sql = run_sql
        self._instances: dict[str, SqlInstance] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sql-instance")
        self.queue_seconds = 0.0  # how long a new instance waits before it runs (/_emulator/instances)

    def submit(self, project: str, body: bytes, owner: str) -> SqlInstance:
        """A new instance of the posted job, running; a job whose ``<Guid>`` an instance of the project
        already has gets that instance back instead (MaxCompute's idempotent submission: a client that
        lost the answer submits again without running the statement twice)."""
        task_type, task_name, query, settings, job_xml = parse_job(body)
        guid = _text(ET.fromstring(job_xml).find("Guid"))
        inst = SqlInstance(
            id=new_instance_id(), project=project, owner=owner, start_time=time.time(),
            task_name=task_name, task_type=task_type, query=query, settings=settings, job_xml=job_xml, guid=guid,
        )
        with self._lock:
            earlier = next((i for i in self._instances.values() if guid and i.guid == guid and i.project == project), None)
            if earlier is not None:
                return earlier
            self._instances[inst.id] = inst
        self._pool.submit(self._run, inst)
        return inst

    def _run(self, inst: SqlInstance) -> None:
        if self.queue_seconds:
            inst.done.wait(self.queue_seconds)  # queued for quota; a stop meanwhile ends the wait
        if inst.task_status == CANCELLED:
            return
        inst.task_status = TASK_RUNNING
        runner = self._run_sql or _default_runner()
        try:
            inst.result = runner(self._storage, inst.project, inst.query, dict(inst.settings))
            inst.task_status = SUCCESS
        except Exception as exc:  # every failure becomes the task's error text, as in MaxCompute
            inst.error = _error_text(exc)
            inst.task_status = FAILED
            if not (getattr(exc, "code", None) or isinstance(exc, EmulatorError)):
                logger.exception("instance %s failed unexpectedly", inst.id)
        finally:
            inst.end_time = time.time()
            inst.status = TERMINATED
            inst.done.set()
            self._forget_old()

    def _forget_old(self) -> None:
        with self._lock:
            finished = [i for i in self._instances.values() if i.status == TERMINATED]  # insertion = start order
            with_result = [i for i in finished if i.result is not None]
            for old in with_result[:-KEEP_RESULTS]:
                old.result = None
                old.result_expired = True
            for old in finished[: max(0, len(self._instances) - KEEP_INSTANCES)]:
                del self._instances[old.id]

    def get(self, project: str, instance_id: str) -> SqlInstance:
        with self._lock:
            inst = self._instances.get(instance_id)
        if inst is None or inst.project != project:
            raise EmulatorError(404, "NoSuchObject", f"Instance not found - {instance_id}")
        return inst

    def list(self, project: str) -> list[SqlInstance]:
        with self._lock:
            return sorted((i for i in self._instances.values() if i.project == project), key=lambda i: i.id)

    def stop(self, project: str, instance_id: str) -> None:
        """Mark a waiting instance cancelled; a running statement finishes (DuckDB work is not interrupted)."""
        inst = self.get(project, instance_id)
        if inst.task_status == WAITING:
            inst.task_status = CANCELLED
            inst.error = "ODPS-0010000:Instance cancelled by user"
            inst.end_time = time.time()
            inst.status = TERMINATED
            inst.done.set()

    def query_result(self, project: str, instance_id: str) -> Any:
        """The SELECT result of a finished instance, for the instance tunnel."""
        inst = self.get(project, instance_id)
        if inst.status != TERMINATED:
            raise EmulatorError(400, "InstanceNotTerminate", f"Instance {instance_id} has not terminated yet")
        if inst.task_status != SUCCESS:
            raise EmulatorError(400, "InvalidArgument", f"Instance {instance_id} did not succeed: {inst.error}")
        if inst.result_expired:
            raise EmulatorError(
                400, "InvalidArgument", f"the result of instance {instance_id} has expired; run the query again"
            )
        if inst.result is None:
            raise EmulatorError(
                400, "InstanceTypeNotSupported", f"Instance {instance_id} has no result set (not a SELECT)"
            )
        return inst.result

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- the non-tunnel result: CSV text plus a descriptor -------------------------------------------


def _strings(column: pa.ChunkedArray, type_name: str) -> list[str | None]:
    """One result column as the text MaxCompute's result API prints (None for NULL)."""
    t = column.type
    if pa.types.is_boolean(t):
        return [None if v is None else ("true" if v else "false") for v in column.to_pylist()]
    if pa.types.is_timestamp(t):
        if type_name == "DATETIME":  # MaxCompute prints DATETIME to the second
            column = pc.cast(column, pa.timestamp("s", t.tz), safe=False)
        return pc.cast(column, pa.string()).to_pylist()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return [None if v is None else v.decode("utf-8", "backslashreplace") for v in column.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return column.to_pylist()
    return pc.cast(column, pa.string()).to_pylist()


def result_csv(result: Any, limit: int = RESULT_ROW_LIMIT) -> tuple[str, bool]:
    """A SELECT result as MaxCompute's CSV text (header row, ``\\N`` for NULL); True if truncated."""
    table: pa.Table = result.table
    truncated = table.num_rows > limit
    table = table.slice(0, limit)
    columns = [
        _strings(table.column(i), getattr(col.type, "name", str(col.type)).upper())
        for i, col in enumerate(result.columns)
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in result.columns])
    for row in zip(*columns, strict=True):
        writer.writerow(["\\N" if v is None else v for v in row])
    return buf.getvalue(), truncated


def result_descriptor(result: Any, truncated: bool) -> dict[str, object]:
    """The JSON pyodps reads to type the CSV columns (``Instance.TaskResult.TaskResultDescriptor``)."""
    return {
        "IsSelect": True,
        "SelectResultStatus": "TRUNCATED" if truncated else "FULL",
        "Schema": {"Columns": [{"Name": c.name, "Type": str(c.type)} for c in result.columns]},
    }
