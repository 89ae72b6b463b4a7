#!/usr/bin/env bash
# The main job: a whole migration on this machine (private MariaDB/MySQL source -> local MaxCompute
# emulator) through the real Airflow DAGs; ends by comparing every replica with its source table.
# Extra arguments go to the demo, e.g. scripts/demo.sh --orders 200000 --keep (prints how to connect and
# stays up until Ctrl-C or `kill PID`); --verbose shows Airflow's own INFO logs too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec python -m airflow_provider_polar_mc.sandbox.demo "$@"
