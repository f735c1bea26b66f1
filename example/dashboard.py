"""Tutorial: monitor the service in the dashboard (and its JSON behind it).

A server started with -http_port serves a live dashboard at /dashboard and the status
it shows at /status/server (the same dict as `BertClient().server_status`). This script
starts such a server, sends a little traffic so the numbers move, prints the URL and a
summary of the status; `--keep_running` then leaves it up until Ctrl-C.

    python example/dashboard.py [--keep_running] [--port P --port_out Q --http_port H]
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

from helpers import example_parser, server_for


def get(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--keep_running",
        action="store_true",
        help="keep the server (and dashboard) up until Ctrl-C",
    )
    options = parser.parse_args(argv)
    with server_for(options, http=True) as server:
        with server.client() as bc:
            for size in (1, 8, 64):
                bc.encode([f"sentence number {i}" for i in range(size)])
            status = bc.server_status
        statistic = status.get("statistic", {})
        print("server_status over ZeroMQ (what the dashboard shows):")
        print(
            json.dumps(
                {
                    key: statistic.get(key)
                    for key in ("num_total_request", "num_total_seq", "num_active_client")
                },
                ensure_ascii=False,
            )
        )

        url = f"{server.http_url}/dashboard"
        code, kind, body = get(url)
        print(f"dashboard: {url}  (HTTP {code}, {kind.split(';')[0]}, {len(body)} bytes)")
        code, _, body = get(f"{server.http_url}/status/server")
        print(
            f"its data:  {server.http_url}/status/server  (HTTP {code}, "
            f"{len(json.loads(body))} fields)"
        )
        if options.keep_running:
            print("open the dashboard in a browser; Ctrl-C stops", flush=True)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                print("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
