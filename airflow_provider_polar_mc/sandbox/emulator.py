"""Run the MaxCompute emulator as a subprocess (``python -m airflow_provider_polar_mc.emulator``).

Used by the tests' fixtures, the benchmarks and the demo. :class:`EmulatorProcess` starts one on a
free port (or a given one) with its own data dir, and knows how to reach it (``.endpoint``,
``.project``, ``.access_id``, ``.access_key``, ``.client()``), restart it and drive its fault
injection (``.set_faults()``). The subprocess writes to a log file next to the data dir.

Fault injection is an admin call: it needs the emulator's admin token, which the emulator makes at
start and writes to ``<data dir>/admin-token`` (mode 0600) before it reports ready; ``start()`` reads
it from there (``.admin_token``). It is unrelated to the access id and key.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_polar_mc.emulator.door import ADMIN_TOKEN_HEADER, read_admin_token

READY_PREFIX = "polar-mc-emulator listening on "
# Emulators started and not yet stopped (the test fixtures attach their logs to failure reports).
running_emulators: list[EmulatorProcess] = []


class EmulatorProcess:
    """One emulator subprocess and how to reach it."""

    def __init__(
        self,
        data_dir: Path,
        project: str = "emulator_project",
        access_id: str = "emulator-ak",
        log_level: str | None = None,
        extra_args: Sequence[str] = (),
    ):
        self.data_dir = Path(data_dir)
        self.log_level = log_level  # the emulator's --log-level (None: its default, INFO)
        self.extra_args = list(extra_args)  # more emulator flags, e.g. ["--max-tunnel-body", "64MiB"]
        self.admin_token = ""  # read from <data dir>/admin-token once started
        self.project = project
        self.access_id = access_id
        self.access_key = secrets.token_urlsafe(18)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.port = 0
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The REST endpoint to give pyodps (the Tunnel endpoint is discovered from it)."""
        return f"{self.url}/api"

    def start(self, timeout: float = 30.0, faults: str | None = None) -> EmulatorProcess:
        env = dict(os.environ, POLAR_MC_EMULATOR_ACCESS_KEY=self.access_key)
        env.pop("POLAR_MC_EMULATOR_FAULTS", None)
        env.pop("POLAR_MC_EMULATOR_ADMIN_TOKEN", None)  # a fresh random token, read back from the data dir
        cmd = [
            sys.executable, "-m", "airflow_provider_polar_mc.emulator",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
            "--project", self.project, "--access-id", self.access_id,
        ]  # fmt: skip
        if faults:
            cmd += ["--faults", faults]
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        cmd += self.extra_args
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
        try:
            self._wait_ready(timeout, log_offset)
        except BaseException:
            self.stop()  # never leave a half-started emulator running (it would outlive the caller)
            raise
        running_emulators.append(self)
        return self

    def _wait_ready(self, timeout: float, log_offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(log_offset)
                for line in f.read().decode("utf-8", "replace").splitlines():
                    if line.startswith(READY_PREFIX):
                        self.url = line[len(READY_PREFIX) :].strip()
                        self.port = int(self.url.rsplit(":", 1)[1])
                        self.admin_token = read_admin_token(self.data_dir)  # written before that line
                        return
            if self._proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self._proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"emulator did not start within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (the emulator closes DuckDB on the way out); returns the exit code."""
        proc, self._proc = self._proc, None
        if self in running_emulators:
            running_emulators.remove(self)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def restart(self) -> EmulatorProcess:
        """Stop and start again on the same port and data dir (clients keep working)."""
        code = self.stop()
        if code not in (0, None):
            raise RuntimeError(f"emulator exited with {code} on stop:\n{self.log_tail()}")
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, access_key: str | None = None, **kw: Any):
        from odps import ODPS

        return ODPS(self.access_id, access_key or self.access_key, self.project, endpoint=self.endpoint, **kw)

    def _admin(self, method: str, body: dict[str, Any] | None = None, resource: str = "faults") -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/_emulator/{resource}", data=data, method=method)
        req.add_header(ADMIN_TOKEN_HEADER, self.admin_token)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Turn on fault injection, e.g. ``set_faults(rate=0.2, kinds=["5xx"], paths=["/tunnel"], seed=1)``."""
        return self._admin("POST", settings)

    def set_instance_queue(self, seconds: float) -> dict[str, Any]:
        """New SQL instances wait ``seconds`` before they run (MaxCompute's queue for quota)."""
        return self._admin("POST", {"queue_seconds": seconds}, resource="instances")

    def clear_faults(self) -> dict[str, Any]:
        return self._admin("DELETE")

    def faults(self) -> dict[str, Any]:
        return self._admin("GET")

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
