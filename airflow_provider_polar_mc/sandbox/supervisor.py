"""Process supervision for the demo: process identity and liveness, stopping process trees, the child
subreaper, and the folder lock (one demo per folder). Linux ``/proc`` where available; elsewhere only
what ``os.kill`` can tell. No Airflow, no migration logic.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import signal
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "demo.lock"


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


def become_subreaper() -> None:
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
