"""The proxy process: serve the Flask app with waitress until the server sends SIGTERM.

Waitress is a production WSGI server in pure Python (no C build, runs wherever the server
does) with a fixed pool of request threads, which is exactly ``-http_max_connect``: one
thread per client of the pool, so no request ever waits for a free client.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from multiprocessing import Process
from multiprocessing.connection import Connection

import waitress

from ..args import bind_address
from ..logger import get_logger
from ..processes import spawn
from .app import create_app
from .backend import ServerAddress, ServerConnection

PARENT_CHECK_SECONDS = 1.0


def start_proxy(args: argparse.Namespace) -> tuple[Process, Connection]:
    """Spawn the proxy; it reports ``("ready", url)`` or ``("error", message)``."""
    return spawn(run_proxy, (args,), "bert-http-proxy")


def run_proxy(args: argparse.Namespace, startup: Connection) -> None:
    """Process entry point: bind -http_port, report, serve, stop cleanly on SIGTERM."""
    logger = get_logger("PROXY", args.verbose)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    try:
        connection = ServerConnection(ServerAddress.from_args(args), args.http_max_connect)
        app = create_app(args, connection, logger)
    except Exception as err:  # reported to the server, which refuses to start
        startup.send(("error", f"the HTTP proxy cannot start: {err}"))
        return
    host = "0.0.0.0" if args.bind_ip == "*" else bind_address(args.bind_ip)
    try:
        server = waitress.create_server(
            app, host=host, port=args.http_port, threads=args.http_max_connect
        )
    except OSError as err:
        connection.close()
        startup.send(("error", f"cannot bind -http_port {args.http_port}: {err.strerror}"))
        return
    url = f"http://{host}:{args.http_port}"
    try:
        signal.signal(signal.SIGTERM, _exit)
        _stop_when_orphaned()
        startup.send(("ready", url))
        logger.info("serving HTTP on %s with %d threads", url, args.http_max_connect)
        server.run()  # on SIGTERM waitress lets the requests in flight finish (5 s at most)
    finally:
        server.close()
        connection.close()
        logger.info("stopped")


def _exit(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _stop_when_orphaned() -> None:
    """If the server dies without stopping us (SIGKILL), stop as if it had sent SIGTERM."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
