#!/usr/bin/env bash
# Run every test: lint, unit, emulator and integration tests (private MariaDB/MySQL + emulator subprocesses).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -k spec
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
ruff check .
exec python -m pytest "$@"
