"""The demo: a whole migration on this machine, end to end, through the real DAGs.

A private MariaDB/MySQL source with a small shop database, the local MaxCompute emulator, and a
throwaway Airflow home. The setup DAG (precheck, schema, full load) runs while writes go on; then
inserts, updates (one changes a primary key), deletes and an ADD COLUMN happen; the incremental DAG
runs its one-minute intervals (binlog sensor, incremental load, merge); finally every replica is
compared with its source table, row for row. Exit status 0 when replica == source.

    python -m airflow_provider_polar_mc.sandbox.demo [--keep] [--orders N] [--verbose]

Two processes. The demo process owns everything that must be cleaned up: the folder's lock, the
MariaDB/MySQL server and the emulator. It never imports Airflow, so its SIGINT/SIGTERM handlers stay
its own (Airflow's task runner replaces the SIGTERM handler of the process that runs a task and never
puts it back). The Airflow work (seeding, metadata database, DAG runs, validation) runs in a worker
subprocess in its own process group, which the demo kills with everything in that group when it stops.
The demo is also a child subreaper (Linux), so anything orphaned under it is still found and stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

DEMO_DIR = Path(os.environ.get("POLAR_MC_DEMO_DIR", Path.cwd() / ".demo")).absolute()
LOCK_NAME = "demo.lock"
CONNECTION_FILE = "connection.txt"
PROJECT = "demo"
ACCESS_ID = "demo-id"
DATABASE = "shop"
_SOURCE_ENV = "POLAR_MC_DEMO_SOURCE"
_PARENT_ENV = "POLAR_MC_DEMO_PARENT"
_AIRFLOW_INFO_NOTE = "Airflow logs at WARNING and above only; --verbose shows everything"


def say(message: str) -> None:
    print(f"[demo {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------
# What the worker does (the Airflow side)
# ------------------------------------------------------------------------------------------------
class Source:
    """The worker's handle on the demo's source server (host, port, user, password from the demo)."""

    def __init__(self, host: str, port: int, user: str, password: str, is_mariadb: bool):
        self.host, self.port, self.user, self.password, self.is_mariadb = host, port, user, password, is_mariadb

    def connect(self):
        import pymysql

        return pymysql.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, autocommit=True
        )

    def execute(self, *statements: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()


def seed(server, orders: int) -> None:
    server.execute(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, tier ENUM('basic','gold') NOT NULL,"
        " joined DATE)",
        "CREATE TABLE shop.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(16) NOT NULL,"
        " amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL, updated_at TIMESTAMP(6) NULL, doc JSON)",
    )
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION max_recursive_iterations = 10000000" if server.is_mariadb else "SET SESSION cte_max_recursion_depth = 10000000")
        cur.execute(
            "INSERT INTO shop.customers WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 500)"
            " SELECT n, CONCAT('customer ', n, IF(n % 7 = 0, ' 😀', '')), IF(n % 5 = 0, 'gold', 'basic'),"
            " DATE('2020-01-01') + INTERVAL n DAY FROM s"
        )
        cur.execute(
            f"INSERT INTO shop.orders WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {orders})"
            " SELECT n, 1 + n % 500, ELT(1 + n % 3, 'new', 'paid', 'shipped'), (n % 100000) / 100,"
            " TIMESTAMP('2025-01-01') + INTERVAL n SECOND + INTERVAL n % 1000000 MICROSECOND,"
            " TIMESTAMP('2025-06-01') + INTERVAL n MINUTE, JSON_OBJECT('n', n, 'tags', JSON_ARRAY('a', 'b')) FROM s"
        )
    conn.close()


def write_while_loading(server, stop: threading.Event) -> None:
    """Writes during the full load: they reach the replica through the binlog."""
    conn = server.connect()
    i = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            i += 1
            cur.execute("UPDATE shop.orders SET status = 'paid', updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (1 + (i * 7919) % 1000,))
            cur.execute(
                "INSERT INTO shop.orders VALUES (%s, 1, 'new', 9.99, UTC_TIMESTAMP(6), NULL, NULL)", (10_000_000 + i,)
            )
            time.sleep(0.02)
    conn.close()


def changes_after_setup(server) -> None:
    server.execute(
        "INSERT INTO shop.customers VALUES (501, 'late joiner', 'gold', '2026-01-01')",
        "UPDATE shop.customers SET tier = 'gold' WHERE id BETWEEN 1 AND 20",
        "DELETE FROM shop.customers WHERE id BETWEEN 490 AND 495",
        "UPDATE shop.orders SET id = id + 20000000 WHERE id BETWEEN 100 AND 109",  # primary-key change
        "DELETE FROM shop.orders WHERE id % 97 = 0 AND id < 5000",
        "ALTER TABLE shop.orders ADD COLUMN channel VARCHAR(8) NULL AFTER status, ADD COLUMN weight DOUBLE NULL",
        "UPDATE shop.orders SET channel = 'web', weight = 1.5 WHERE id BETWEEN 200 AND 400",
        "INSERT INTO shop.orders VALUES (30000000, 2, 'new', 'app', 12.50, UTC_TIMESTAMP(6), NULL, JSON_ARRAY(1, 2), 0.25)",
    )


def spec_yaml(start: dt.datetime) -> str:
    return f"""\
name: demo_shop
source:
  conn_id: polardb_default
  databases: [shop]
destination:
  conn_id: maxcompute_default
partition: [year, month, day, hour, minute]
full_load:
  chunk_rows: 20000
  parallelism: 2
incremental:
  start_date: "{start.isoformat()}"
  settle_seconds: 2
  poll_seconds: 1
"""


def _die_with_parent() -> None:
    """The worker gets SIGKILL if the demo process dies, even by kill -9 (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = os.environ.get(_PARENT_ENV)
    if parent and os.getppid() != int(parent):
        os._exit(1)  # the demo is already gone


def _task_summary(run) -> str:
    """'precheck success, full_load[0] success, ...' for a finished DAG run."""
    try:
        tis = sorted(run.get_task_instances(), key=lambda ti: (ti.start_date or dt.datetime.max.replace(tzinfo=dt.timezone.utc), ti.map_index))
    except Exception:  # noqa: BLE001 - a summary only
        return ""
    return ", ".join(
        f"{ti.task_id}{f'[{ti.map_index}]' if ti.map_index >= 0 else ''} {getattr(ti.state, 'value', ti.state)}" for ti in tis
    )


def _report_run(what: str, run, started: float) -> bool:
    ok = run.state == "success"
    summary = _task_summary(run)
    say(f"{what}: {run.state} in {time.monotonic() - started:.0f}s" + (f" ({summary})" if summary else ""))
    if not ok and not os.environ.get("POLAR_MC_DEMO_VERBOSE"):
        say("the task logs above show Airflow's warnings and errors; run again with --verbose for all of them")
    return ok


def worker_main(args: argparse.Namespace) -> int:
    """The Airflow side of the demo; runs in its own process (see the module docstring)."""
    _die_with_parent()
    if not args.verbose:
        import warnings

        # Dependencies' deprecation notices (e.g. starlette's about httpx) are noise for a demo user.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated")
    server = Source(**json.loads(os.environ[_SOURCE_ENV]))
    spec_dir = Path(os.environ["POLAR_MC_SPEC_DIR"])

    say(f"seeding shop.orders ({args.orders:,} rows) and shop.customers (500 rows)")
    seed(server, args.orders)
    start = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    spec_path = spec_dir / "demo_shop.yaml"
    spec_path.write_text(spec_yaml(start))
    say("initialising the Airflow metadata database")
    migrate = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        capture_output=not args.verbose, text=True, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        say(f"`airflow db migrate` failed with exit status {migrate.returncode}:\n{migrate.stdout or ''}{migrate.stderr or ''}")
        return 1

    from airflow_provider_polar_mc.dag_factory import dags_for_spec

    setup, incremental = dags_for_spec(spec_path)
    stop = threading.Event()
    writer = threading.Thread(target=write_while_loading, args=(server, stop), daemon=True)
    writer.start()
    say(f"running DAG {setup.dag_id} (precheck, schema migration, full load) while writes continue")
    started = time.monotonic()
    run = setup.test()
    stop.set()
    writer.join()
    if not _report_run(f"DAG {setup.dag_id}", run, started):
        return 1
    if args.until == "setup":
        say("stopping after the setup DAG (--until setup)")
        return 0
    say("changing the source: inserts, updates (one changes primary keys), deletes, ADD COLUMN")
    changes_after_setup(server)
    last_end = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    wait = (last_end - dt.datetime.now(dt.timezone.utc)).total_seconds() + 3
    say(f"waiting {wait:.0f}s for the current one-minute interval to close")
    time.sleep(max(wait, 0))
    interval = start
    while interval < last_end:
        say(f"running DAG {incremental.dag_id} for the interval starting {interval:%H:%M} UTC")
        started = time.monotonic()
        # A manual run's data interval is the one that ends at its logical date.
        run = incremental.test(logical_date=interval + dt.timedelta(minutes=1))
        if not _report_run(f"DAG {incremental.dag_id} {interval:%H:%M}", run, started):
            return 1
        interval += dt.timedelta(minutes=1)
    return validate(spec_path)


def validate(spec_path: Path) -> int:
    from airflow_provider_polar_mc.core.validate import compare_migration
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(spec_path)
    results = compare_migration(spec, resolve.source_endpoint(spec), resolve.destination(spec))
    for result in results:
        say(f"{result.source} vs replica {result.destination}: {result.source_rows:,} / {result.destination_rows:,} rows, "
            + ("IDENTICAL" if result.equal else f"DIFFERENT {json.dumps(result.summary())}"))
    ok = bool(results) and all(r.equal for r in results)
    say("replica == source" if ok else "replica differs from source")
    return 0 if ok else 1


# ------------------------------------------------------------------------------------------------
# Processes: identity, liveness, children (Linux /proc; elsewhere only what os.kill can tell)
# ------------------------------------------------------------------------------------------------
def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (index 0 = state, 1 = ppid, 19 = start time)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def process_start(pid: int) -> str | None:
    """When the process started (clock ticks since boot): with the PID, it names one process for good."""
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def alive(pid: int, start: str | None = None) -> bool:
    """True when the process runs (not a zombie) and, given its start time, is still that process."""
    if pid <= 0:
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X") and (start is None or stat[19] == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path("/proc").is_dir()  # with /proc, no stat means gone


def descendants(pid: int) -> list[int]:
    """Every process below pid (children first), found through the ppid links in /proc."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _proc_stat(int(entry))
                if stat:
                    children.setdefault(int(stat[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def group_members(pgid: int, not_before: str | None = None) -> list[int]:
    """Live processes in process group pgid (started no earlier than not_before, when given)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            stat = _proc_stat(int(entry)) if entry.isdigit() else None
            if (stat and int(stat[2]) == pgid and stat[0] not in ("Z", "X")
                    and (not_before is None or int(stat[19]) >= int(not_before))):  # fmt: skip
                found.append(int(entry))
    return found


def _reap() -> None:
    """Collect exited children (orphans reparented to the demo, the child subreaper)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def stop_processes(pids: list[int], timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal pids, wait until they are gone (reaping our own), SIGKILL what is left at the timeout."""
    pids = [p for p in pids if p != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        left = [p for p in pids if alive(p)]
        if not left:
            return
        if time.monotonic() > deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            _reap()
            return
        time.sleep(0.05)


def _become_subreaper() -> None:
    """Orphans of the demo's descendants are reparented to the demo, so it can stop them (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


# ------------------------------------------------------------------------------------------------
# The folder's lock: one demo per folder
# ------------------------------------------------------------------------------------------------
class FolderBusy(Exception):
    def __init__(self, info: dict):
        super().__init__(info)
        self.info = info


class FolderLock:
    """``<demo dir>/demo.lock``: an exclusive flock held for the demo's lifetime plus a JSON record of
    who holds it (PID and start time, phase, the processes it started, how to reach them).

    The kernel drops a flock when its holder dies, however it dies, so a lock left behind by a dead
    demo never blocks. The record is checked as well: a live PID with the recorded start time means the
    demo still runs even if flock is not honoured by the filesystem. Processes a dead demo left behind
    (after kill -9) are stopped before the folder is cleared, if they are still those processes.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LOCK_NAME
        self.fd: int | None = None
        self.record: dict = {}

    def acquire(self) -> dict:
        """Take the lock; return the record a previous (dead) demo left, if any. FolderBusy if held."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise FolderBusy(self.read()) from None
                raise
        previous = self.read()
        pid = previous.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and alive(pid, previous.get("pid_start")):
            os.close(fd)
            raise FolderBusy(previous)
        self.fd = fd
        self.update(pid=os.getpid(), pid_start=process_start(os.getpid()), started=dt.datetime.now().isoformat(timespec="seconds"),
                    phase="starting", folder=str(self.folder))  # fmt: skip
        return previous

    def read(self) -> dict:
        try:
            record = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def update(self, **fields) -> None:
        if self.fd is None:
            return
        self.record.update(fields)
        data = json.dumps(self.record, indent=1).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        # The file stays (unlinking it would let two later demos lock two different files); empty = free.
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        os.close(self.fd)  # drops the flock
        self.fd = None


def busy_message(folder: Path, info: dict) -> str:
    pid = info.get("pid", "?")
    lines = [f"another demo is running in {folder}: PID {pid}"
             + (f", started {info['started'].replace('T', ' ')}" if info.get("started") else "")
             + (f", {info['phase']}" if info.get("phase") else "") + "."]  # fmt: skip
    if info.get("phase") == "kept running":
        lines.append(f"  Its connection details are in {folder / CONNECTION_FILE}.")
    lines.append(f"  Stop it with Ctrl-C in its terminal or `kill {pid}` (it stops its MariaDB and emulator too),")
    lines.append("  or run this one in another folder: POLAR_MC_DEMO_DIR=/some/other/dir scripts/demo.sh")
    return "\n".join(lines)


def clean_up_after(previous: dict, folder: Path) -> None:
    """Stop what a dead demo left running in this folder (after kill -9), then empty the folder."""
    pid = previous.get("pid")
    leftovers = [
        (name, p["pid"], p.get("start"))
        for name, p in (previous.get("processes") or {}).items()
        if isinstance(p, dict) and isinstance(p.get("pid"), int) and alive(p["pid"], p.get("start"))
    ]
    worker = (previous.get("processes") or {}).get("worker")
    if isinstance(worker, dict) and isinstance(worker.get("pid"), int):
        # The worker dies with the demo (PDEATHSIG); its subprocesses may not: they are in its group.
        listed = {p for _, p, _ in leftovers}
        leftovers += [("Airflow process", p, None) for p in group_members(worker["pid"], worker.get("start"))
                      if p not in listed]  # fmt: skip
    if pid:
        say(f"a previous demo (PID {pid}) in this folder is no longer running; taking its place")
    if leftovers:
        names = {"mysql": "source server", "worker": "Airflow worker"}
        say("stopping what it left running: " + ", ".join(f"{names.get(name, name)} PID {p}" for name, p, _ in leftovers))
        stop_processes([p for _, p, _ in leftovers], timeout=30)
    for child in folder.iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()


# ------------------------------------------------------------------------------------------------
# The demo process
# ------------------------------------------------------------------------------------------------
class Interrupted(BaseException):
    """SIGINT/SIGTERM arrived: unwinds the demo process to its clean-up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def connection_details(server, emulator, folder: Path) -> str:
    """Everything needed to look around while the demo keeps running."""
    client = Path(server.client_binary or ("mariadb" if server.is_mariadb else "mysql")).name
    product = "MariaDB" if server.is_mariadb else "MySQL"
    password = server.password or ""
    dsn_auth = server.user + (f":{password}" if password else "")
    client_password = f" -p'{password}'" if password else ""
    python = sys.executable
    key = emulator.access_key
    return "\n".join([
        "=" * 100,
        "The demo keeps running (--keep). To look around:",
        "",
        f"source ({product}), database {DATABASE}: host {server.host}, port {server.port}, user {server.user}, "
        + (f"password {password}" if password else "no password"),
        f"  {client} -h {server.host} -P {server.port} -u {server.user}{client_password} {DATABASE}",
        f"  DSN mysql://{dsn_auth}@{server.host}:{server.port}/{DATABASE}",
        "",
        "MaxCompute emulator:",
        f"  endpoint    {emulator.endpoint}",
        f"  project     {emulator.project}",
        f"  access id   {emulator.access_id}",
        f"  access key  {key}",
        "",
        "pyodps (paste into a shell):",
        f"{python} - <<'EOF'",
        "from odps import ODPS",
        f'o = ODPS("{emulator.access_id}", "{key}", project="{emulator.project}", endpoint="{emulator.endpoint}")',
        "print(sorted(t.name for t in o.list_tables()))",
        "EOF",
        "",
        f"Airflow home (metadata database of the DAG runs): {folder / 'airflow'}",
        f"Stop: Ctrl-C here, or `kill {os.getpid()}` from another shell (demo PID {os.getpid()}; it stops "
        f"{product} PID {_pid(server)} and the emulator PID {_pid(emulator)})",
        f"(written to {folder / CONNECTION_FILE} too)",
        "=" * 100,
    ])  # fmt: skip


def _pid(started) -> int | None:
    proc = getattr(started, "_proc", None)  # PrivateMySqlServer / EmulatorProcess keep their Popen there
    return proc.pid if proc is not None else None


class Demo:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.folder = DEMO_DIR
        self.lock = FolderLock(self.folder)
        self.server = None
        self.emulator = None
        self.worker: subprocess.Popen | None = None
        self.stopping = False

    # -- signals ------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame) -> None:
        if self.stopping:  # a second signal while stopping: no more waiting
            self._kill_everything(signum)
        self.stopping = True
        raise Interrupted(signum)

    def _kill_everything(self, signum: int) -> None:
        name = signal.Signals(signum).name
        print(f"[demo] {name} again: killing everything now", file=sys.stderr, flush=True)
        for pid in descendants(os.getpid()) + [p for p in (_pid(self.server), _pid(self.emulator)) if p]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.lock.release()
        os._exit(128 + signum)

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        try:
            previous = self.lock.acquire()
        except FolderBusy as busy:
            print(f"[demo] {busy_message(self.folder, busy.info)}", file=sys.stderr, flush=True)
            return 1
        except Interrupted as exc:
            return 128 + exc.signum
        _become_subreaper()
        interrupted = False
        try:
            clean_up_after(previous, self.folder)
            return self._run()
        except Interrupted as exc:
            self.stopping = True
            say(f"{signal.Signals(exc.signum).name} received: stopping the demo and everything it started")
            interrupted = True
            return 128 + exc.signum
        finally:
            self.stopping = True
            try:
                self._shutdown(report=interrupted)
            finally:
                self.lock.release()

    def _run(self) -> int:
        from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection
        from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess
        from airflow_provider_polar_mc.sandbox.mysql import PrivateMySqlServer

        args, folder = self.args, self.folder
        (folder / "specs").mkdir()
        say("starting a private MariaDB/MySQL source (binlog ROW/FULL/FULL) and the MaxCompute emulator")
        self.server = PrivateMySqlServer(base_dir=folder / "mysql")
        self.server.start()
        self._record_processes()
        self.emulator = EmulatorProcess(folder / "emulator", project=PROJECT, access_id=ACCESS_ID)
        self.emulator.start()
        self._record_processes()
        server, emulator = self.server, self.emulator
        product = "MariaDB" if server.is_mariadb else "MySQL"
        say(f"source: {product} on {server.host}:{server.port} (PID {_pid(server)}); emulator: {emulator.url} (PID {_pid(emulator)})")
        self.lock.update(phase="migrating", source=f"{server.host}:{server.port}", emulator=emulator.endpoint)

        env = dict(
            os.environ,
            AIRFLOW_HOME=str(folder / "airflow"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{folder / 'airflow' / 'airflow.db'}",
            AIRFLOW__CORE__DAGS_FOLDER=str(Path(__file__).resolve().parents[2] / "dags"),
            POLAR_MC_SPEC_DIR=str(folder / "specs"),
            POLAR_MC_DEMO_DIR=str(folder),
            AIRFLOW_CONN_POLARDB_DEFAULT=polardb_connection(server),
            AIRFLOW_CONN_MAXCOMPUTE_DEFAULT=maxcompute_connection(emulator),
            **{_SOURCE_ENV: json.dumps(dict(host=server.host, port=server.port, user=server.user,
                                            password=server.password, is_mariadb=server.is_mariadb)),
               _PARENT_ENV: str(os.getpid())},
        )  # fmt: skip
        if args.verbose:
            env["POLAR_MC_DEMO_VERBOSE"] = "1"
        else:
            env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
        cmd = [sys.executable, "-m", "airflow_provider_polar_mc.sandbox.demo", "--worker",
               "--orders", str(args.orders), "--until", args.until] + (["--verbose"] if args.verbose else [])  # fmt: skip
        # Its own session: a terminal's Ctrl-C reaches the demo only, which stops the worker's whole group.
        self.worker = subprocess.Popen(cmd, env=env, start_new_session=True)
        self._record_processes()
        code = self.worker.wait()
        self._stop_airflow_side()  # anything the worker left behind
        if code != 0:
            say(f"the demo failed (exit status {code})")
        if args.keep:
            details = connection_details(server, emulator, folder)
            path = folder / CONNECTION_FILE
            path.write_text(details + "\n")
            path.chmod(0o600)
            self.lock.update(phase="kept running")
            print(details, flush=True)
            while True:
                time.sleep(3600)
        return code

    def _record_processes(self) -> None:
        processes = {}
        for name, started in (("mysql", self.server), ("emulator", self.emulator), ("worker", self.worker)):
            pid = started.pid if isinstance(started, subprocess.Popen) else _pid(started)
            if pid:
                processes[name] = {"pid": pid, "start": process_start(pid)}
        self.lock.update(processes=processes)

    # -- stop ---------------------------------------------------------------------------------
    def _stop_airflow_side(self) -> None:
        """Stop the worker's process group and anything else below the demo that is not one of the two
        servers (a half-started worker, `airflow db migrate`, an orphaned grandchild), before the servers
        go away, so nothing is left to complain about them."""
        servers = [p for p in (_pid(self.server), _pid(self.emulator)) if p]
        keep = set(servers).union(*(descendants(p) for p in servers))
        worker = self.worker
        if worker is not None and worker.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, signal.SIGTERM)  # its whole group: Airflow's subprocesses too
        # Airflow's task runner ignores SIGTERM in the middle of a task: SIGKILL after a short grace.
        stop_processes([p for p in descendants(os.getpid()) if p not in keep], timeout=3)
        if worker is not None:
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                worker.wait(1)

    def _shutdown(self, report: bool) -> None:
        running = [name for name, pid in (("the Airflow worker", self.worker.pid if self.worker else None),
                                          ("the emulator", _pid(self.emulator)), ("the source server", _pid(self.server)))
                   if pid and alive(pid)]  # fmt: skip
        if report and running:
            say("stopping " + ", ".join(running))
        self._stop_airflow_side()
        # The two servers stop in parallel (each needs a moment to shut down cleanly).
        # destroy(): stop, and remove what the server keeps outside the folder (a short socket dir, if any).
        stops = [self.emulator.stop] if self.emulator is not None else []
        stops += [self.server.destroy] if self.server is not None else []
        stoppers = [threading.Thread(target=stop, daemon=True) for stop in stops]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(40)
        # Anything else still below the demo: a half-started server, an orphaned grandchild.
        stop_processes(descendants(os.getpid()), timeout=10)
        if report:
            say("stopped; nothing the demo started is left running")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="rows in shop.orders (default 50,000)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the server and emulator running at the end and print how to connect to them")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's own log lines (INFO and above)")
    # Hidden: stop after the setup DAG (tests use it to reach --keep quickly); the worker flag.
    parser.add_argument("--until", choices=["setup", "all"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)
    return Demo(args).run()


if __name__ == "__main__":
    sys.exit(main())
