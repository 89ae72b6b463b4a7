"""A test session leaves nothing behind in the temp folder, whether its tests pass or fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.temp_root import KEEP_ENV, SYSTEM_TMP
from tests.integration.leak_probe import PROBE_ENV

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("leak_probe.py")


def test_a_session_leaves_the_temp_folder_as_it_found_it():
    # Outside this session's own temp dir, with a short path (MariaDB's socket lives under it).
    fresh = Path(tempfile.mkdtemp(prefix="pmc-leak-", dir=SYSTEM_TMP))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST_"))}
        env.pop(KEEP_ENV, None)
        env.update(TMPDIR=str(fresh), **{PROBE_ENV: "1"})
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=", str(PROBE)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        output = f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        assert result.returncode == 1 and "1 failed, 1 passed" in result.stdout, output
        assert "deliberate failure" in result.stdout, output
        left = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*"))
        assert left == [], f"left behind in {fresh}: {left[:20]}\n{output}"
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
