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

Modules: this one is the demo process (arguments, signals, starting and stopping the servers and the
worker); :mod:`~airflow_provider_polar_mc.sandbox.demo_worker` is the worker's Airflow side;
:mod:`~airflow_provider_polar_mc.sandbox.supervisor` is process identity, stopping and the folder lock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from airflow_provider_polar_mc.sandbox.demo_worker import PARENT_ENV, SOURCE_ENV, say
from airflow_provider_polar_mc.sandbox.supervisor import (
    LOCK_NAME,
    FolderBusy,
    FolderLock,
    alive,
    become_subreaper,
    descendants,
    group_members,
    process_start,
    stop_processes,
)

DEMO_DIR = Path(os.environ.get("POLAR_MC_DEMO_DIR", Path.cwd() / ".demo")).absolute()
CONNECTION_FILE = "connection.txt"
PROJECT = "demo"
ACCESS_ID = "demo-id"
DATABASE = "shop"
_AIRFLOW_INFO_NOTE = "Airflow logs at WARNING and above only; --verbose shows everything"


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
        become_subreaper()
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
            # The binlog sensor defers (DAG.test() runs its trigger in process), as with a triggerer.
            AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{folder / 'airflow' / 'airflow.db'}",
            AIRFLOW__CORE__DAGS_FOLDER=str(Path(__file__).resolve().parents[2] / "dags"),
            POLAR_MC_SPEC_DIR=str(folder / "specs"),
            POLAR_MC_DEMO_DIR=str(folder),
            AIRFLOW_CONN_POLARDB_DEFAULT=polardb_connection(server),
            AIRFLOW_CONN_MAXCOMPUTE_DEFAULT=maxcompute_connection(emulator),
            **{SOURCE_ENV: json.dumps(dict(host=server.host, port=server.port, user=server.user,
                                            password=server.password, is_mariadb=server.is_mariadb)),
               PARENT_ENV: str(os.getpid())},
        )  # fmt: skip
        if args.verbose:
            env["POLAR_MC_DEMO_VERBOSE"] = "1"
        else:
            env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
            # Events of the tables' Assets that no DAG schedules on: Airflow warns at each (README "Assets").
            env["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] = "airflow.assets.manager=ERROR"
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
        from airflow_provider_polar_mc.sandbox.demo_worker import worker_main

        return worker_main(args)
    return Demo(args).run()


if __name__ == "__main__":
    sys.exit(main())
