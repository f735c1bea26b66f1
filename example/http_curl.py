"""Tutorial: the HTTP JSON API (-http_port), called with curl.

The server's HTTP proxy answers POST /encode with the 1.10 JSON format, plus status and
health endpoints. This script runs the very curl commands a shell user would (curl must
be installed) and shows their answers; `--print_only` just prints the commands.

    python example/http_curl.py [--port P --port_out Q --http_port H]
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys

from helpers import example_parser, server_for


def curl(*args: str) -> dict:
    """Run curl, print the command like a shell transcript, and parse the JSON answer."""
    import subprocess

    command = ["curl", "--silent", "--show-error", "--max-time", "60", *args]
    print(f"$ {shlex.join(command)}")
    answer = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(answer)


def post_json(url: str, payload: dict) -> dict:
    """``curl -X POST`` a JSON body, as the README shows it."""
    return curl(
        "-X", "POST", url, "-H", "content-type: application/json", "-d", json.dumps(payload)
    )


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    options = parser.parse_args(argv)
    if shutil.which("curl") is None:
        raise SystemExit("this example needs curl on PATH")
    with server_for(options, http=True) as server:
        url = server.http_url
        health = curl(f"{url}/health")
        print(f"  -> {health}")

        payload = {"id": 123, "texts": ["hello world", "good day!"], "is_tokenized": False}
        answer = post_json(f"{url}/encode", payload)
        dims = [len(vector) for vector in answer["result"]]
        print(
            f"  -> id {answer['id']}, status {answer['status']}, "
            f"{len(answer['result'])} vectors of {dims[0]} floats, "
            f"first values {[round(v, 4) for v in answer['result'][0][:3]]}"
        )

        tokens = {"id": "tok", "texts": [["hello", "world"]], "is_tokenized": True}
        answer = post_json(f"{url}/encode", tokens)
        print(f"  -> id {answer['id']}: {len(answer['result'])} vector from your own tokens")

        status = curl(f"{url}/status/server")
        statistic = status.get("statistic", {})
        print(
            f"  -> server status: {len(status)} fields, "
            f"num_total_seq={statistic.get('num_total_seq')}"
        )
        clients = curl(f"{url}/status/client")
        print(f"  -> client status: max_concurrency={clients.get('max_concurrency')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
