"""Drive Debian's headless Chromium (through its chromedriver) for the dashboard tests.

Selenium is told exactly where chromedriver is, so its Selenium Manager never tries to
download a browser or a driver: this network has no internet.

`python -m tests.browser` regenerates docs/images/dashboard.png from a real server on the
default model under about 20 s of load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = REPO / "server" / "bert_serving" / "server" / "http" / "dashboard"
ARTIFACTS = REPO / "artifacts"
INSTALL_HINT = (
    "apt-get install -y --no-install-recommends chromium chromium-driver "
    "(and pip install -r tests/requirements.txt)"
)

# Without the background-networking flags Chromium's own connections (updates, sync,
# field trials) are refused on a closed network and it logs errors or stalls.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> tuple[str, str] | None:
    """The Chromium binary and its chromedriver, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return (browser, driver) if browser and driver else None


def require_chromium() -> tuple[str, str]:
    """Chromium and Selenium, or a skip here and a failure in CI (.ci/run installs them)."""
    found = find_chromium()
    problem = None if found else "Chromium or chromedriver is not installed"
    try:
        import selenium  # noqa: F401
    except ImportError:
        problem = "the selenium package is not installed"
    if problem is None and found is not None:
        return found
    message = f"{problem}: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must run the browser tests)", pytrace=False)
    pytest.skip(message)


@contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Selenium driver for a fresh headless Chromium profile, quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = require_chromium()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[dict]:
    """Browser console entries of severity SEVERE logged since the last call."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # an element not rendered yet is just "not yet"
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def full_page_screenshot(driver: Any, path: Path, width: int = 1280) -> Path:
    """The whole page as a PNG: the window is resized to the document's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, int(height) + 100)
    time.sleep(0.5)  # charts redraw on resize
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


class DashboardStandIn:
    """A tiny HTTP server with the proxy's dashboard routes and a status chosen by the test.

    It lets the page be tested in states a healthy server does not show (unreachable, an
    API key): `status` gets the request's headers on each request and may raise to answer
    503; with `api_key` the status answers 401 unless the request brings that key.
    """

    def __init__(self, status: Callable[[dict], dict], api_key: str | None = None) -> None:
        self.status = status
        self.api_key = api_key
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> DashboardStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in ("/dashboard", "/dashboard/"):
                    self._file(DASHBOARD_DIR / "index.html")
                elif path.startswith("/dashboard/"):
                    self._file(DASHBOARD_DIR / path[len("/dashboard/") :])
                elif path == "/status/server":
                    if (
                        stand_in.api_key
                        and self.headers.get("Authorization") != f"Bearer {stand_in.api_key}"
                    ):
                        self._send(401, "application/json", '{"error": "missing API key"}')
                        return
                    try:
                        body = json.dumps(stand_in.status(dict(self.headers))).encode()
                    except Exception as error:
                        self._send(503, "application/json", json.dumps({"error": str(error)}))
                    else:
                        self._send(200, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found")

            def _file(self, path: Path) -> None:
                types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
                if path.parent != DASHBOARD_DIR or not path.is_file():
                    self._send(404, "text/plain", b"not found")
                else:
                    self._send(
                        200,
                        f"{types.get(path.suffix, 'text/plain')}; charset=utf-8",
                        path.read_bytes(),
                    )

            def _send(self, code: int, content_type: str, body: bytes | str) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep the test output quiet
                pass

        return Handler


def _send_load(client: Any, until: float, phase: float) -> None:
    """Batches of random sentences at a rate that rises and falls, like real traffic."""
    import math
    import random

    from tests.fixtures.checkpoints import tiny_vocab

    words = [word for word in tiny_vocab() if word.isascii() and word.isalpha()]
    while time.monotonic() < until:
        wave = 0.5 + 0.5 * math.sin(time.monotonic() / 9 + phase)
        size = random.randint(1, 4 + int(28 * wave))
        client.encode(
            [" ".join(random.choices(words, k=random.randint(4, 16))) for _ in range(size)]
        )
        time.sleep(random.uniform(0.05, 0.15) + 0.6 * (1 - wave))


def _docs_screenshot(seconds: float = 100.0) -> Path:
    """Serve the default model, load it from a few clients, and photograph the dashboard."""
    from bert_serving.client import BertClient
    from tests.servers import free_ports, running_server

    (http_port,) = free_ports(1)
    extra = ("-http_port", str(http_port), "-num_worker", "2")
    with running_server(None, *extra) as server, headless_chromium() as driver:
        driver.get(f"http://127.0.0.1:{http_port}/dashboard")
        until = time.monotonic() + seconds
        clients = [
            BertClient(port=server.args.port, port_out=server.args.port_out) for _ in range(3)
        ]
        threads = [
            threading.Thread(target=_send_load, args=(client, until - 25 * index, 2.0 * index))
            for index, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(2)
        target = REPO / "docs" / "images" / "dashboard.png"
        full_page_screenshot(driver, target)
        errors = console_errors(driver)
        assert errors == [], errors
        for client in clients:
            client.close()
    return target


if __name__ == "__main__":
    print(_docs_screenshot())
