"""A private MariaDB/MySQL server in a temporary data directory, for the demo, benchmarks and tests.

It never touches a server that happens to be running on the machine: it gets its own datadir, socket
and free loopback port, and is configured the way migration needs the source (row-based binary log
with full images and full metadata) unless told otherwise (negative tests start a second instance
with, say, binary logging off).

MariaDB (``mariadbd``) and MySQL 8 (``mysqld``) are both supported: they differ in how a datadir is
initialised (``mariadb-install-db`` vs ``mysqld --initialize-insecure``) and in a few option names.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

DEBIAN_PACKAGE = "mariadb-server"
# AF_UNIX socket paths are limited to 108 bytes on Linux, 104 on macOS; the server refuses longer ones.
_MAX_SOCKET_PATH = 100


class ServerBinaryMissing(RuntimeError):
    """No mariadbd/mysqld on PATH (or in /usr/sbin)."""


def find_server_binary() -> tuple[str, bool]:
    """Return (path, is_mariadb) of the server binary to use; MariaDB preferred."""
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/usr/local/sbin"
    for name in ("mariadbd", "mysqld"):
        path = shutil.which(name, path=search)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
            return path, "mariadb" in out.lower()
    raise ServerBinaryMissing(
        f"No MariaDB/MySQL server binary (mariadbd or mysqld) found. Install one, e.g. "
        f"`apt-get install -y {DEBIAN_PACKAGE}` on Debian/Ubuntu, or MySQL 8's mysql-server."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerConfig:
    """How to configure the private server; defaults are what migration requires of a source."""

    log_bin: bool = True
    binlog_format: str = "ROW"
    binlog_row_image: str = "FULL"
    binlog_row_metadata: str = "FULL"
    server_id: int = 1
    binlog_expire_seconds: int | None = None  # None: server default (MariaDB: 0 = never purge)
    max_binlog_size: int | None = None  # bytes; small values force rotation in tests
    gtid_mode: bool = False  # MySQL only; MariaDB always has GTIDs
    extra: Mapping[str, str] = field(default_factory=dict)


class PrivateMySqlServer:
    """Start, stop and restart a throwaway server. Root has no password; connect over TCP on 127.0.0.1."""

    def __init__(self, config: ServerConfig | None = None, base_dir: str | Path | None = None):
        self.config = config or ServerConfig()
        self.binary, self.is_mariadb = find_server_binary()
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="polar-mc-mysql-"))
        self.datadir = self.base_dir / "data"
        self.socket = str(self.base_dir / "mysqld.sock")
        self._socket_dir: Path | None = None  # a short-path dir for the socket, only while the server runs
        self.log_path = self.base_dir / "mysqld.log"
        self.port = 0
        self.host = "127.0.0.1"
        self.user = "root"
        self.password = ""
        self._proc: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> PrivateMySqlServer:
        if not self.datadir.exists():
            self._initialise()
        if not self.port:
            self.port = free_port()
        if len(str(self.base_dir / "mysqld.sock")) > _MAX_SOCKET_PATH:  # deep temp dir: a short socket path
            self._socket_dir = Path(tempfile.mkdtemp(prefix="pmc-", dir="/tmp"))
            self.socket = str(self._socket_dir / "mysqld.sock")
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(self._server_args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop(timeout=5.0)  # never leave a half-started server running (it would outlive the caller)
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError as exc:
                last_error = exc
                time.sleep(0.1)
        raise TimeoutError(f"server did not accept connections in {timeout}s ({last_error}):\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def restart(self) -> None:
        """Stop and start on the same port and datadir (binlogs are kept; a new file is opened)."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PrivateMySqlServer:
        try:
            return self.start()
        except BaseException:
            self.destroy()  # __exit__ is not called when __enter__ raises
            raise

    def __exit__(self, *exc) -> None:
        self.destroy()

    # -- use ---------------------------------------------------------------------------------
    def connect(self, database: str | None = None, **kwargs) -> pymysql.Connection:
        params = dict(
            host=self.host, port=self.port, user=self.user, password=self.password, database=database, autocommit=True
        )
        params.update(kwargs)
        return pymysql.connect(**params)

    def execute(self, *statements: str, database: str | None = None) -> list[tuple]:
        """Run statements as root; returns the rows of the last one."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                rows: list[tuple] = []
                for s in statements:
                    cur.execute(s)
                    rows = list(cur.fetchall())
                return rows
        finally:
            conn.close()

    def binary_logs(self) -> list[str]:
        """The server's binary log files, oldest first (``SHOW BINARY LOGS``)."""
        return [row[0] for row in self.execute("SHOW BINARY LOGS")]

    def _purge_to(self, name: str) -> None:
        # PURGE takes only a quoted string (no hex literal), so the name goes as a bound parameter:
        # pymysql escapes it for the session's sql_mode (NO_BACKSLASH_ESCAPES included).
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("PURGE BINARY LOGS TO %s", (name,))
        finally:
            conn.close()

    def purge_binary_logs_to(self, name: str, timeout: float = 30.0, poll: float = 0.2) -> list[str]:
        """``PURGE BINARY LOGS TO name`` and wait until every file older than ``name`` is gone; returns
        the files left (``name`` first).

        MySQL purges at once. MariaDB keeps a file until its binlog checkpoint for it is written, which
        happens asynchronously once the file's transactions are durable in InnoDB (up to a few seconds
        after a rotation); until then PURGE succeeds and removes nothing. So the purge is retried until
        ``SHOW BINARY LOGS`` starts at ``name``, for at most ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._purge_to(name)
            files = self.binary_logs()
            if name not in files:
                raise ValueError(f"{name} is not among the binary logs of this server: {files}")
            older = files[: files.index(name)]
            if not older:
                return files
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"PURGE BINARY LOGS TO {name!r} still leaves {older} after {timeout:.0f}s (a file is kept "
                    f"until its binlog checkpoint is written, and while a replica or binlog reader uses it); "
                    f"server log:\n{self.log_tail()}"
                )
            time.sleep(poll)

    @property
    def client_binary(self) -> str | None:
        """The server's own command-line client (used to measure the server's raw scan rate)."""
        for name in ("mariadb", "mysql"):
            path = shutil.which(name)
            if path:
                return path
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- internals ---------------------------------------------------------------------------
    def _user_args(self) -> list[str]:
        # The server refuses to run as root unless told which user to run as.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _initialise(self) -> None:
        self.datadir.mkdir(parents=True)
        if self.is_mariadb:
            installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
            if installer is None:
                raise ServerBinaryMissing(f"mariadb-install-db not found (package {DEBIAN_PACKAGE})")
            cmd = [
                installer,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *self._user_args(),
            ]
            basedir = Path(self.binary).resolve().parent.parent
            if (basedir / "share").exists():
                cmd.append(f"--basedir={basedir}")
        else:
            cmd = [self.binary, "--no-defaults", "--initialize-insecure", f"--datadir={self.datadir}", *self._user_args()]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initialising {self.datadir} failed:\n{result.stdout}\n{result.stderr}")

    def _server_args(self) -> list[str]:
        c = self.config
        args = [
            self.binary,
            "--no-defaults",
            *self._user_args(),
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.base_dir / 'mysqld.pid'}",
            f"--log-error={self.log_path}",
            f"--server-id={c.server_id}",
            "--character-set-server=utf8mb4",
            "--default-time-zone=+00:00",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=200",
            "--skip-name-resolve",
        ]
        if self.is_mariadb:
            args.append("--innodb-log-file-size=256M")
        else:
            args += ["--mysqlx=OFF", "--innodb-redo-log-capacity=536870912"]
        if c.log_bin:
            args += [
                f"--log-bin={self.base_dir / 'binlog' / 'mysql-bin'}",
                f"--binlog-format={c.binlog_format}",
                f"--binlog-row-image={c.binlog_row_image}",
                f"--binlog-row-metadata={c.binlog_row_metadata}",
                "--sync-binlog=0",
            ]
            (self.base_dir / "binlog").mkdir(exist_ok=True)
            if c.max_binlog_size:
                args.append(f"--max-binlog-size={c.max_binlog_size}")
            if c.binlog_expire_seconds is not None:
                args.append(f"--binlog-expire-logs-seconds={c.binlog_expire_seconds}")
            if c.gtid_mode and not self.is_mariadb:
                args += ["--gtid-mode=ON", "--enforce-gtid-consistency=ON"]
        elif not self.is_mariadb:
            # MySQL 8 logs by default; MariaDB logs only when --log-bin is given.
            args.append("--disable-log-bin")
        for k, v in c.extra.items():
            args.append(f"--{k}={v}")
        return args
