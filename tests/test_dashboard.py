"""The dashboard in a real headless Chromium: against a real server and its HTTP proxy, and
against a stand-in for the states a healthy server never shows (unreachable, API key)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bert_serving.client import BertClient
from bert_serving.server import __version__
from tests.browser import (
    ARTIFACTS,
    DashboardStandIn,
    console_errors,
    full_page_screenshot,
    headless_chromium,
    require_chromium,
    wait_until,
)
from tests.servers import free_ports, running_server

pytestmark = pytest.mark.slow  # every test here starts a server (or uses one)

STATUS = {  # the shape of a real SHOW_STATUS, trimmed to what the page reads
    "model_dir": "/models/tiny",
    "max_seq_len": 25,
    "pooling_strategy": "REDUCE_MEAN",
    "pooling_layer": [-2],
    "port": 5555,
    "port_out": 5556,
    "http_port": 8125,
    "num_worker": 2,
    "max_batch_size": 256,
    "cpu": False,
    "xla": False,
    "fp16": True,
    "device_map": [0, 1],
    "server_version": "9.8.7",
    "python_version": "3.11.7",
    "tensorflow_version": "2.21.0",
    "pyzmq_version": "27.3.0",
    "zmq_version": "4.3.5",
    "server_start_time": "2026-01-01 10:00:00.000000",
    "server_current_time": "2026-01-01 11:00:00.000000",
    "num_process": 4,
    "ready": True,
    "num_workers_serving": 2,
    "num_worker_losses": 1,
    "num_worker_rejoins": 1,
    "workers": [
        {
            "name": "gpu-a:41/0",
            "host": "gpu-a",
            "device": "GPU 0",
            "remote": False,
            "compute_dtype": "float16",
            "state": "serving",
            "parts_done": 12,
            "last_heartbeat_s": 0.4,
            "joined_s": 3600.0,
        },
        {
            "name": "gpu-b:77/0",
            "host": "gpu-b",
            "device": "GPU 1",
            "remote": True,
            "compute_dtype": "float16",
            "state": "serving",
            "parts_done": 30,
            "last_heartbeat_s": 0.9,
            "joined_s": 60.0,
        },
    ],
    "model": {
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "max_position_embeddings": 64,
        "vocab_size": 136,
        "has_pooler": True,
    },
    "statistic": {
        "num_data_request": 12,
        "num_total_seq": 40,
        "num_sys_request": 3,
        "num_error_request": 1,
        "num_active_client": 2,
        "num_recent_client": 1,
        "recent_request_per_second": 1.5,
        "recent_seq_per_second": 4.0,
        "latency_ms": {"avg": 5.0, "p50": 4.0, "p95": 9.0, "max": 12.0, "count": 12},
        "num_queued_parts": 0,
        "num_in_flight_parts": 0,
        "uptime_seconds": 3600.0,
    },
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    with headless_chromium() as driver:
        yield driver


def attribute(driver: Any, element_id: str, name: str) -> str:
    return driver.find_element("id", element_id).get_attribute(name) or ""


def text(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_live_dashboard_of_a_real_server(browser, google_model_dir):
    """Loads cleanly from the proxy, shows the version, and charts the requests sent."""
    (http_port,) = free_ports(1)
    with running_server(google_model_dir, "-http_port", str(http_port)) as server:
        console_errors(browser)  # drop what an earlier test left in the log
        browser.get(f"http://127.0.0.1:{http_port}/dashboard")
        try:
            wait_until(
                lambda: text(browser, "server-version") == __version__,
                10,
                f"the page shows server version {__version__}",
            )
            assert attribute(browser, "server-ready", "data-ready") == "true"
            assert attribute(browser, "connection", "data-state") == "ok"
            assert "/0 · CPU · local · " in text(browser, "devices")
            assert browser.find_element(
                "css selector", '[data-argument="http_port"] dd'
            ).text == str(http_port)

            with BertClient(port=server.args.port, port_out=server.args.port_out) as client:
                for _ in range(5):
                    client.encode(["hello world", "good day to you"])
            wait_until(
                lambda: float(attribute(browser, "chart-requests", "data-max")) > 0,
                8,
                "the requests-per-second chart shows the requests",
            )
            assert int(attribute(browser, "chart-requests", "data-points")) > 0
            assert int(attribute(browser, "chart-latency", "data-points")) > 0
            wait_until(lambda: text(browser, "stat-texts") == "10", 5, "10 texts are counted")
            time.sleep(1.5)  # one more refresh, so the screenshot shows a line
        finally:
            full_page_screenshot(browser, ARTIFACTS / "dashboard.png")
        assert console_errors(browser) == []


def test_unreachable_server_is_shown_and_the_page_recovers(browser):
    failing = {"now": False}

    def status(_headers: dict) -> dict:
        if failing["now"]:
            raise ConnectionError("the ZeroMQ server does not answer")
        return copy.deepcopy(STATUS)

    with DashboardStandIn(status) as stand_in:
        browser.get(f"{stand_in.url}/dashboard")
        wait_until(lambda: text(browser, "server-version") == "9.8.7", 10, "the page is live")
        assert not browser.find_element("id", "unreachable").is_displayed()
        assert text(browser, "devices") == (
            "gpu-a:41/0 · GPU 0 · local · 12 parts · heard 0.4 s ago\n"
            "gpu-b:77/0 · GPU 1 · remote gpu-b · 30 parts · heard 0.9 s ago"
        )
        assert text(browser, "stat-errors") == "1"

        failing["now"] = True
        wait_until(
            lambda: browser.find_element("id", "unreachable").is_displayed(),
            5,
            "the unreachable banner appears",
        )
        assert text(browser, "connection") == "server unreachable"
        assert "HTTP 503" in text(browser, "unreachable-detail")

        failing["now"] = False
        wait_until(
            lambda: not browser.find_element("id", "unreachable").is_displayed(),
            5,
            "the banner goes once the server answers again",
        )
        assert attribute(browser, "connection", "data-state") == "ok"
    console_errors(browser)  # the 503s were logged on purpose


def test_api_key_from_the_form_and_from_the_address(browser):
    with DashboardStandIn(lambda _headers: copy.deepcopy(STATUS), api_key="s3cret") as stand_in:
        browser.get(f"{stand_in.url}/dashboard")
        wait_until(
            lambda: browser.find_element("id", "key-form").is_displayed(),
            5,
            "the page asks for the API key",
        )
        assert text(browser, "connection") == "API key needed"
        browser.find_element("id", "key-input").send_keys("s3cret")
        browser.find_element("css selector", "#key-form button").click()
        wait_until(
            lambda: text(browser, "server-version") == "9.8.7",
            5,
            "the page is live with the key typed in",
        )
        assert not browser.find_element("id", "key-form").is_displayed()

        browser.execute_script("sessionStorage.clear()")
        console_errors(browser)  # the 401s were logged on purpose
        browser.get(f"{stand_in.url}/dashboard#key=s3cret")
        wait_until(
            lambda: attribute(browser, "connection", "data-state") == "ok",
            5,
            "the page is live with the key from its address",
        )
        assert console_errors(browser) == []
