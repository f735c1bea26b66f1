"""The proxy process: serve the Flask app with waitress until the server sends SIGTERM.

Waitress is a production WSGI server in pure Python (no C build, runs wherever the server
does) with a fixed pool of request threads, ``-http_max_connect``, which all share the one
link to the server.
"""

from __future__ import annotations

import os
import signal
from multiprocessing import Process
from multiprocessing.connection import Connection

import waitress

from ..logger import get_logger
from ..network import ParentWatch
from ..processes import spawn
from .app import create_app
from .backend import ServerConnection
from .settings import ProxySettings


def start_proxy(settings: ProxySettings) -> tuple[Process, Connection]:
    """Spawn the proxy; it reports ``("ready", url)`` or ``("error", message)``."""
    return spawn(run_proxy, (settings,), "bert-http-proxy")


def run_proxy(settings: ProxySettings, startup: Connection) -> None:
    """Process entry point: bind -http_port, report, serve, stop cleanly on SIGTERM."""
    logger = get_logger("PROXY", settings.verbose)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    try:
        connection = ServerConnection(settings.server, settings.threads)
        app = create_app(settings, connection, logger)
    except Exception as err:  # reported to the server, which refuses to start
        startup.send(("error", f"the HTTP proxy cannot start: {err}"))
        return
    try:
        server = waitress.create_server(
            app, host=settings.host, port=settings.http_port, threads=settings.threads
        )
    except OSError as err:
        connection.close()
        startup.send(("error", f"cannot bind -http_port {settings.http_port}: {err.strerror}"))
        return
    url = f"http://{settings.host}:{settings.http_port}"
    try:
        signal.signal(signal.SIGTERM, _exit)
        # if the server dies without stopping us (SIGKILL), stop as if it had sent SIGTERM
        ParentWatch().call_when_gone(lambda: os.kill(os.getpid(), signal.SIGTERM))
        startup.send(("ready", url))
        logger.info("serving HTTP on %s with %d threads", url, settings.threads)
        server.run()  # on SIGTERM waitress lets the requests in flight finish (5 s at most)
    finally:
        server.close()
        connection.close()
        logger.info("stopped")


def _exit(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
