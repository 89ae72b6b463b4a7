"""The demo as a user runs it: a subprocess, its printed connection details, its signals and its lock.

One kept demo (``--orders 200 --until setup --keep``: the real setup DAG, then kept running; ~30 s) is
shared by the tests that connect to it, start a second demo next to it, read its output and finally
stop it with SIGTERM. Two short runs are interrupted with SIGINT in early phases. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pymysql
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

BANNER_TIMEOUT = 180  # seconds from start to the --keep banner (setup DAG on a busy 2-core runner)
BANNER_END = re.compile(r"^\(written to .*connection\.txt too\)$")


class DemoProcess:
    """``python -m airflow_provider_polar_mc.sandbox.demo`` in a folder, its output collected as it comes."""

    def __init__(self, folder: Path, *args: str):
        self.folder = folder
        self.demo_dir = folder / ".demo"
        env = dict(os.environ, POLAR_MC_DEMO_DIR=str(self.demo_dir))
        for name in [n for n in env if n.startswith(("AIRFLOW", "POLAR_MC_")) and n != "POLAR_MC_DEMO_DIR"]:
            env.pop(name)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_polar_mc.sandbox.demo", *args],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # a Ctrl-C in the test runner's terminal stays out of it
        )  # fmt: skip
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str | re.Pattern, timeout: float) -> re.Match:
        """The first output line matching pattern; fails (with the output) at the timeout or the exit."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if m := regex.search(line):
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"no line matching {regex.pattern!r} within {timeout}s "
                                f"(exit status {self.proc.poll()}); output:\n" + "\n".join(self.lines))  # fmt: skip
                self._changed.wait(min(left, 1.0))

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not exit within {timeout}s; output:\n{self.output}")
        self._reader.join(10)
        return code

    def family(self) -> list[psutil.Process]:
        """The demo and every process below it, right now."""
        try:
            me = psutil.Process(self.proc.pid)
            return [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self, folder_too: bool = True) -> None:
        """Teardown: whatever is left (of it, and with folder_too of anything in its folder), without mercy."""
        family = self.family() + (leftovers(self.demo_dir) if folder_too else [])
        for p in family:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(family, timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def leftovers(demo_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names the demo folder (servers, emulator, workers)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and any(str(demo_dir) in a for a in p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            pass
    return found


def assert_all_gone(processes: list[psutil.Process], demo_dir: Path, ports: list[int] = ()) -> None:
    _, alive = psutil.wait_procs(processes, timeout=15)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"still running: {alive}"
    assert not leftovers(demo_dir), f"still running: {leftovers(demo_dir)}"
    for port in ports:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on port {port}"


def banner_field(output: str, name: str) -> str:
    m = re.search(rf"^\s+{re.escape(name)}\s+(\S+)$", output, re.M)
    assert m, f"no {name!r} in the banner:\n{output}"
    return m.group(1)


# ------------------------------------------------------------------------------------------------
# One kept demo, shared; the SIGTERM test (last in this file) stops it.
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> DemoProcess:
    demo = DemoProcess(tmp_path_factory.mktemp("kept-demo"), "--orders", "200", "--until", "setup", "--keep")
    try:
        demo.wait_for(BANNER_END, BANNER_TIMEOUT)
        yield demo
    finally:
        demo.kill()


def test_keep_prints_what_it_takes_to_connect_and_it_works(kept):
    out = kept.output
    assert "DAG polar_mc__demo_shop__setup: success" in out
    # The source: a client command line and a DSN, both usable.
    client = re.search(r"^\s+(mariadb|mysql) -h (\S+) -P (\d+) -u (\S+)( -p'[^']*')? shop$", out, re.M)
    assert client, out
    dsn = re.search(r"DSN mysql://(?P<user>[^:@/]+)(?::(?P<password>[^@]*))?@(?P<host>[^:/]+):(?P<port>\d+)/(?P<db>\w+)", out)
    assert dsn, out
    assert (dsn["host"], dsn["port"], dsn["user"]) == (client[2], client[3], client[4])
    conn = pymysql.connect(host=dsn["host"], port=int(dsn["port"]), user=dsn["user"], password=dsn["password"] or "",
                           database=dsn["db"], connect_timeout=10)  # fmt: skip
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM orders")
            assert cur.fetchone()[0] >= 200
    finally:
        conn.close()

    # The emulator: endpoint, project, access id and key, for pyodps.
    from odps import ODPS

    endpoint, project = banner_field(out, "endpoint"), banner_field(out, "project")
    access_id, access_key = banner_field(out, "access id"), banner_field(out, "access key")
    names = {t.name for t in ODPS(access_id, access_key, project=project, endpoint=endpoint).list_tables()}
    assert {"orders_base", "orders_log", "customers_base", "customers_log"} <= names, names

    # The pyodps snippet is ready to paste into a shell.
    snippet = re.search(r"^(\S+ - <<'EOF'\n.*?\nEOF)$", out, re.M | re.S)
    assert snippet, out
    run = subprocess.run(["bash", "-c", snippet[1]], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "'orders_base'" in run.stdout

    # How to stop it names the demo's PID; the same details are in a file.
    assert f"`kill {kept.proc.pid}`" in out and "Ctrl-C" in out
    assert access_key in (kept.demo_dir / "connection.txt").read_text()


def test_a_second_demo_in_the_same_folder_refuses_and_names_the_first(kept):
    before = {p.name for p in kept.demo_dir.iterdir()}
    second = DemoProcess(kept.folder, "--orders", "200")
    try:
        code = second.wait(60)
    finally:
        second.kill(folder_too=False)  # the folder is the kept demo's
    assert code != 0
    assert f"PID {kept.proc.pid}" in second.output and f"kill {kept.proc.pid}" in second.output, second.output
    # The kept demo and its files are untouched, its source still answers.
    assert kept.proc.poll() is None
    assert {p.name for p in kept.demo_dir.iterdir()} == before
    port = int(re.search(r"-P (\d+)", kept.output)[1])
    pymysql.connect(host="127.0.0.1", port=port, user="root", password="", connect_timeout=10).close()


def test_without_verbose_airflow_logs_no_info_lines(kept):
    out = kept.output
    info = [line for line in out.splitlines() if re.search(r"\[info\s*\]|\bINFO\b", line)]
    assert not info, "\n".join(info)
    assert "running DAG polar_mc__demo_shop__setup" in out  # the demo's own progress is what one reads


def test_sigterm_stops_the_kept_demo_and_everything_it_started(kept):
    family = kept.family()
    names = {p.name() for p in family}
    assert any(n.startswith(("mariadbd", "mysqld")) for n in names), names
    ports = [int(re.search(r"-P (\d+)", kept.output)[1]), int(re.search(r"endpoint\s+http://[^:]+:(\d+)/", kept.output)[1])]
    kept.proc.send_signal(signal.SIGTERM)
    assert kept.wait(45) == 143
    assert "SIGTERM received" in kept.output
    assert_all_gone(family, kept.demo_dir, ports)
    assert json.loads((kept.demo_dir / "demo.lock").read_text() or "{}") == {}  # the folder is free again


# ------------------------------------------------------------------------------------------------
# Early phases, with a stale lock left by a dead demo in the folder
# ------------------------------------------------------------------------------------------------
def _cmdline(process: psutil.Process) -> str:
    """A process's command line, or "" when it exited (or became a zombie) since it was listed."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


@pytest.mark.parametrize("phase", ["starting a private", "initialising the Airflow metadata database"])
def test_sigint_in_an_early_phase_stops_everything(tmp_path, phase):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / ".demo").mkdir()
    (tmp_path / ".demo" / "demo.lock").write_text(json.dumps({"pid": dead.pid, "phase": "kept running"}))

    demo = DemoProcess(tmp_path, "--orders", "200")
    try:
        demo.wait_for(re.escape(phase), 60)
        deadline = time.monotonic() + 10
        while True:  # let the phase get going: its subprocesses exist
            family = demo.family()
            cmdlines = [line for p in family if (line := _cmdline(p))]
            if phase.startswith("starting") and any("install-db" in c or "mariadbd" in c or "mysqld" in c for c in cmdlines):
                break
            if phase.startswith("initialising") and any("db migrate" in c for c in cmdlines):
                break
            assert time.monotonic() < deadline, f"the phase's subprocesses never appeared: {cmdlines}\n{demo.output}"
            time.sleep(0.05)
        demo.proc.send_signal(signal.SIGINT)
        assert demo.wait(45) == 130
        assert "SIGINT received" in demo.output
        assert "no longer running" in demo.output  # the stale lock did not block
        assert "Traceback" not in demo.output, demo.output
        assert_all_gone(family, demo.demo_dir)
    finally:
        demo.kill()
