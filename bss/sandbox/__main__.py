"""python -m bss.sandbox --host 127.0.0.1 --port 8765 [--state FILE] [--issuer URL]
[--smtp-port N] [--smtp-cert FILE] [--push-threads N]"""

from __future__ import annotations

import argparse
import logging

from bss.sandbox.app import serve
from bss.sandbox.pubsub_push import PUSH_THREADS
from bss.sandbox.tokens import GOOGLE_ISSUER


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bss.sandbox", description="Run the local Google sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--state",
        metavar="FILE",
        default=None,
        help="load state from FILE at start, save it after changes and on exit",
    )
    parser.add_argument(
        "--issuer",
        metavar="URL",
        default=GOOGLE_ISSUER,
        help="the iss of id tokens and of the OIDC discovery document (default: %(default)s)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        metavar="N",
        default=None,
        help="serve Gmail's SMTP (STARTTLS, AUTH XOAUTH2) on port N; 0: no SMTP "
        "(default: the HTTP port + 1, if free)",
    )
    parser.add_argument(
        "--smtp-cert",
        metavar="FILE",
        default=None,
        help="write the SMTP server's self-signed certificate (PEM) to FILE, for clients to trust",
    )
    parser.add_argument(
        "--push-threads",
        type=int,
        metavar="N",
        default=PUSH_THREADS,
        help="Pub/Sub pushes outstanding at once (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.smtp_port is not None and not 0 <= args.smtp_port <= 65535:
        parser.error("--smtp-port must be between 0 and 65535")
    if args.push_threads < 1:
        parser.error("--push-threads must be at least 1")
    serve(
        args.host,
        args.port,
        state_file=args.state,
        issuer=args.issuer,
        smtp_port=args.smtp_port,
        smtp_cert=args.smtp_cert,
        push_threads=args.push_threads,
    )


if __name__ == "__main__":
    main()
