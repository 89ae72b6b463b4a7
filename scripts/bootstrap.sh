#!/usr/bin/env bash
# Create or reuse ./.venv and install the project with everything tests, demo and benchmarks need.
# Sourced by scripts/test.sh and scripts/demo.sh. Also makes sure a MariaDB/MySQL server binary exists
# (the tests and the demo start their own private server from it; they never use a running one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${POLAR_MC_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_server_binary() {
  if command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 \
     || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: no MariaDB/MySQL server binary; installing Debian package mariadb-server" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  else
    echo "bootstrap: no MariaDB/MySQL server binary (mariadbd or mysqld) found." >&2
    echo "  Install it first, e.g. 'sudo apt-get install mariadb-server' (Debian/Ubuntu) or MySQL 8's mysql-server." >&2
    exit 1
  fi
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.polar-mc-install-stamp"
  local want
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing the project and its dev/emulator extras into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
    # setuptools leaves a second copy of the package metadata in the checkout; with the checkout on
    # sys.path Airflow would then load the provider's plugin twice ("already registered").
    rm -rf "$ROOT"/*.egg-info
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

ensure_server_binary
ensure_venv
