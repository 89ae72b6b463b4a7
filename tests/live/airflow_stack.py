"""A real Airflow 3 deployment for the live test: api-server, scheduler, dag-processor and triggerer as
separate subprocesses (what ``airflow standalone`` runs, but each with its own log file and process
group), a private AIRFLOW_HOME with SQLite and the LocalExecutor, and a small REST client.

The environment is built from scratch for the subprocesses: the test session's own AIRFLOW__* settings
(tests/fixtures/airflow_home.py sets unit-test mode, for one) must not leak into the deployment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from airflow_provider_polar_mc.sandbox.mysql import free_port

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class AirflowStack:
    def __init__(self, home: Path, spec_dir: Path, connections: dict[str, str]):
        self.home = home
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.token = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        bin_dir = str(Path(sys.executable).parent)
        # Airflow's OpenLineage provider writes every event as a file here (its file transport).
        self.lineage_dir = home / "openlineage"
        self.lineage_dir.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        env.update(
            PATH=bin_dir + os.pathsep + env.get("PATH", ""),  # components start `airflow` by name
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",  # the binlog sensor defers to the triggerer
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API__BASE_URL=self.url,
            # One secret for every component: tokens signed by the API server are checked by workers and back.
            AIRFLOW__API_AUTH__JWT_SECRET="polar-mc-live-test-secret-" + os.urandom(8).hex(),
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="10",
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            AIRFLOW__OPENLINEAGE__NAMESPACE="polar_mc_live",
            AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(self.lineage_dir / "event")}),
            POLAR_MC_SPEC_DIR=str(spec_dir),
            PYTHONUNBUFFERED="1",
        )
        env.update(connections)
        self.env = env

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> AirflowStack:
        self.home.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            env=self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if migrate.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}"
            )
        for name in COMPONENTS:
            with open(self.home / f"{name}.log", "ab") as log:
                self.procs[name] = subprocess.Popen(
                    ["airflow", name], env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stop() takes its children down with it
                )  # fmt: skip
        return self

    def stop(self, timeout: float = 20.0) -> None:
        import psutil

        # Task runners put themselves in process groups of their own: remember every descendant now.
        descendants: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                descendants += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGKILL)  # stragglers (task supervisors, gunicorn/uvicorn workers)
            if proc.poll() is None:
                proc.wait(5)
        for child in descendants:
            try:
                child.kill()  # psutil checks the process is still the one it saw (pid reuse)
            except psutil.NoSuchProcess:
                pass

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}")

    # -- REST ----------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 15
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from exc
        return json.loads(raw) if raw else None

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        """Until /api/v2/monitor/health reports the metadatabase, scheduler, triggerer and dag processor healthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                last = self.request("GET", "/api/v2/monitor/health", auth=False, timeout=5)
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((last.get(p) or {}).get("status") == "healthy" for p in parts):
                    return last
            except (OSError, RuntimeError) as exc:
                last = exc
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy within {timeout}s: {last}")

    def login(self) -> None:
        """With SIMPLE_AUTH_MANAGER_ALL_ADMINS, GET /auth/token hands out an admin token."""
        self.token = self.request("GET", "/auth/token", auth=False)["access_token"]

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                return self.request("GET", f"/api/v2/dags/{dag_id}")
            except RuntimeError as exc:
                if "HTTP 404" not in str(exc) or time.monotonic() > deadline:
                    errors = self.request("GET", "/api/v2/importErrors")
                    raise RuntimeError(f"DAG {dag_id} not parsed: {exc}; import errors: {errors}") from exc
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A manual run; ``conf`` fills the DAG's Params (the trigger form)."""
        body: dict[str, Any] = {"logical_date": None}
        if conf is not None:
            body["conf"] = conf
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def backfill(self, dag_id: str, from_date: str, to_date: str, **options: Any) -> dict[str, Any]:
        """Airflow 3's backfill of the runs whose logical dates lie in [from_date, to_date]. On SQLite the
        api-server refuses it (503, "Database is locked") while the scheduler writes: asked again."""
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, **options}
        for attempt in range(30):
            try:
                return self.request("POST", "/api/v2/backfills", body)
            except RuntimeError as exc:
                if "Database is locked" not in str(exc) or attempt == 29:
                    raise
                time.sleep(1)
        raise AssertionError("not reached")

    def get_backfill(self, backfill_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/backfills/{backfill_id}")

    def lineage_events(self) -> list[dict[str, Any]]:
        """The OpenLineage events written so far (one JSON file each)."""
        events = []
        for path in sorted(self.lineage_dir.glob("event-*.json")):
            try:
                events.append(json.loads(path.read_text()))
            except ValueError:  # a file still being written
                continue
        return events

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=logical_date&limit=100")[
            "dag_runs"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        run = urllib.parse.quote(run_id, safe="")
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances?limit=100")[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        run = urllib.parse.quote(run_id, safe="")
        content = self.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/logs/{try_number}"
            f"?full_content=true&map_index={map_index}",
        )["content"]
        lines = []
        for item in content:
            if isinstance(item, dict):
                lines.append(
                    " ".join(str(item.get(k, "")) for k in ("timestamp", "level", "event") if item.get(k))
                )
            else:
                lines.append(str(item))
        return "\n".join(lines)

    # -- diagnostics ---------------------------------------------------------------------------
    def log_tails(self, lines: int = 60) -> str:
        """The tail of every component's log and of every task log under AIRFLOW_HOME/logs."""
        out = []
        for name in COMPONENTS:
            out.append(_tail(self.home / f"{name}.log", lines, f"airflow {name}"))
        logs = self.home / "logs"
        if logs.exists():
            task_logs = sorted(
                (p for p in logs.rglob("*.log") if "dag_processor" not in p.parts),
                key=lambda p: p.stat().st_mtime,
            )
            for path in task_logs[-8:]:
                out.append(_tail(path, lines // 2, str(path.relative_to(logs))))
        return "\n".join(out)


def _tail(path: Path, lines: int, title: str) -> str:
    try:
        text = [line[:600] for line in path.read_text("utf-8", "replace").splitlines()[-lines:]]
    except OSError as exc:
        text = [f"({exc})"]
    return f"----- {title} (last {lines} lines) -----\n" + "\n".join(text)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group the component leads (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass
