"""Run the JOC emulator in the foreground until Ctrl-C (or SIGTERM).

    python -m tests.joc_emulator --port 4446 [--host 127.0.0.1] [--user root:root]
        [--security-level LOW] [--force-comments] [--state FILE] [--tls-cert F --tls-key K]

The first line on stdout is ``JOC emulator listening on URL`` (URL without ``/joc/api``);
``--port 0`` picks a free port.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from tests.joc_emulator.server import JocEmulator
from tests.joc_emulator.state import (
    ALL_PERMISSIONS,
    VIEW_PERMISSIONS,
    Account,
    EmulatorConfig,
    SecurityLevel,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.joc_emulator", description="Run the JOC Cockpit emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4446, help="0 picks a free port")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="an account with every permission (repeatable; default root:root)",
    )
    parser.add_argument(
        "--viewer",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="an account with the certificate and inventory view permissions only",
    )
    parser.add_argument(
        "--security-level", type=SecurityLevel, choices=list(SecurityLevel), default="MEDIUM"
    )
    parser.add_argument("--force-comments", action="store_true")
    parser.add_argument("--joc-version", default="2.8.1", help="the version JOC reports")
    parser.add_argument("--idle-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument("--deploy-delay", type=float, default=0.2, help="seconds")
    parser.add_argument("--state", metavar="FILE", help="persist the state in this JSON file")
    parser.add_argument("--tls-cert", metavar="FILE")
    parser.add_argument("--tls-key", metavar="FILE")
    parser.add_argument("--tls-ca", metavar="FILE", help="CA for client certificates")
    parser.add_argument("--require-client-cert", action="store_true")
    return parser


def _accounts(
    parser: argparse.ArgumentParser, users: Sequence[str], viewers: Sequence[str]
) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for spec, permissions in [(u, ALL_PERMISSIONS) for u in users] + [
        (v, VIEW_PERMISSIONS) for v in viewers
    ]:
        name, sep, password = spec.partition(":")
        if not sep or not name:
            parser.error("accounts are given as NAME:PASSWORD")
        accounts[name] = Account(password, permissions)
    return accounts


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    config = EmulatorConfig(
        version=args.joc_version,
        security_level=args.security_level,
        force_comments=args.force_comments,
        idle_timeout=args.idle_timeout,
        deploy_delay=args.deploy_delay,
    )
    if args.user or args.viewer:
        config.accounts = _accounts(parser, args.user, args.viewer)
    emulator = JocEmulator(
        config,
        host=args.host,
        port=args.port,
        state_file=args.state,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        require_client_cert=args.require_client_cert,
    )
    stopped = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (``cmd &``)
    emulator.start()
    print(f"JOC emulator listening on {emulator.base_url}", flush=True)
    try:
        stopped.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
