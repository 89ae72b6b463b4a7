"""``polar-mc-emulator``: run the local MaxCompute emulator.

Prints one machine-readable line once it accepts connections, which fixtures and scripts wait for::

    polar-mc-emulator listening on http://127.0.0.1:8900

Point pyodps at ``<that URL>/api``; the Tunnel endpoint is discovered from there. SIGTERM/SIGINT stop it
cleanly (in-flight requests finish, DuckDB is closed). Data lives in ``DATA_DIR/emulator.duckdb``.

Fault injection (``/_emulator/faults``) needs the admin token: ``--admin-token`` or
``$POLAR_MC_EMULATOR_ADMIN_TOKEN``, else a random one; either way it is written to
``DATA_DIR/admin-token`` (mode 0600) before the "listening" line is printed. The door's limits
(body sizes, body idle timeout, Date window) have flags below; their defaults suit pyodps and the
provider's Tunnel blocks.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .door import ADMIN_TOKEN_ENV_VAR, DoorLimits, parse_size
from .faults import ENV_VAR as FAULTS_ENV_VAR
from .faults import FaultConfig, FaultConfigError
from .server import serve, shutdown

ACCESS_KEY_ENV_VAR = "POLAR_MC_EMULATOR_ACCESS_KEY"
READY_PREFIX = "polar-mc-emulator listening on "


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polar-mc-emulator", description="Local MaxCompute emulator (pyodps-compatible).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8900, help="port to bind; 0 picks a free one (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, required=True, help="directory for emulator.duckdb and tunnel files")
    p.add_argument(
        "--project", action="append", required=True, help="project name to serve (repeat for several projects)"
    )
    p.add_argument("--access-id", required=True, help="the only access id accepted")
    p.add_argument(
        "--access-key",
        default=None,
        help=f"its secret; prefer the {ACCESS_KEY_ENV_VAR} environment variable (keeps it out of `ps`)",
    )
    p.add_argument(
        "--faults",
        default=None,
        help=f"fault injection settings, e.g. rate=0.05,kinds=5xx+timeout+drop,seed=7 (default: ${FAULTS_ENV_VAR})",
    )
    p.add_argument(
        "--admin-token",
        default=None,
        help=f"token for /_emulator admin calls (default: ${ADMIN_TOKEN_ENV_VAR}, else random); "
        "written to DATA_DIR/admin-token (mode 0600)",
    )
    d = DoorLimits()
    for flag, kind, default, metavar, meaning in (
        ("--max-rest-body", _size, d.max_rest_body, "SIZE", "largest REST request body, e.g. 16MiB"),
        ("--max-tunnel-body", _size, d.max_tunnel_body, "SIZE", "largest Tunnel request body (one block as sent), e.g. 1GiB"),
        ("--max-inflated-body", _size, d.max_inflated_body, "SIZE", "largest Tunnel block after Content-Encoding is undone"),
        ("--body-timeout", float, d.body_timeout, "SECONDS", "a request body stalling this long is answered 400"),
        ("--max-clock-skew", float, d.max_clock_skew, "SECONDS",
         "signed requests whose Date is further from the server clock are refused"),
    ):
        unit = " bytes" if metavar == "SIZE" else ""
        p.add_argument(flag, type=kind, default=default, metavar=metavar, help=f"{meaning} (default: %(default)s{unit})")
    p.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    return p


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    access_key = args.access_key or os.environ.get(ACCESS_KEY_ENV_VAR)
    if not access_key:
        print(f"polar-mc-emulator: give --access-key or set {ACCESS_KEY_ENV_VAR}", file=sys.stderr)
        return 2
    try:
        faults = FaultConfig.parse(args.faults if args.faults is not None else os.environ.get(FAULTS_ENV_VAR, ""))
    except FaultConfigError as exc:
        print(f"polar-mc-emulator: {exc}", file=sys.stderr)
        return 2
    try:
        limits = DoorLimits(
            max_rest_body=args.max_rest_body,
            max_tunnel_body=args.max_tunnel_body,
            max_inflated_body=args.max_inflated_body,
            body_timeout=args.body_timeout,
            max_clock_skew=args.max_clock_skew,
        )
    except ValueError as exc:
        print(f"polar-mc-emulator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    admin_token = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV_VAR) or None
    try:
        server, storage = serve(
            args.host, args.port, args.data_dir, args.project, args.access_id, access_key, faults,
            limits=limits, admin_token=admin_token,
        )  # fmt: skip
    except ValueError as exc:
        print(f"polar-mc-emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # serve_forever runs in a thread so the main thread can react to signals and call shutdown().
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    worker.start()
    print(READY_PREFIX + server.url, flush=True)
    if faults.enabled:
        logging.getLogger("polar_mc_emulator").warning("fault injection enabled: %s", faults.to_json())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        shutdown(server, storage)
        worker.join(timeout=5)
        logging.getLogger("polar_mc_emulator").info("stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
