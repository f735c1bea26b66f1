"""CURVE encryption and client authentication, the listening interface, request limits and
secrets kept out of the config."""

# The CURVE tests share a shape on purpose: a server with some keys, clients with others.

from __future__ import annotations

import json
import shutil

import pytest
import requests
import zmq.auth

from bert_serving.client import BertClient, HandshakeError
from tests.servers import free_ports, running_server
from tests.test_server import raw_request


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key pairs of the server, an allowed client and an intruder; the allowed folder."""
    root = tmp_path_factory.mktemp("keys")
    files = {
        name: zmq.auth.create_certificates(str(root), name)
        for name in ("server", "client", "intruder")
    }
    allowed = root / "allowed"
    allowed.mkdir()
    shutil.copy(files["client"][0], allowed)
    return {
        name: {"public": public, "secret": secret} for name, (public, secret) in files.items()
    } | {"allowed": str(allowed)}


def client(server, **kwargs) -> BertClient:
    return BertClient(port=server.args.port, port_out=server.args.port_out, timeout=3000, **kwargs)


def allowlisting_server(model_dir, keys):
    """A server that encrypts and lets in only the allowed client's key."""
    return running_server(
        model_dir,
        "-curve_secret_key",
        keys["server"]["secret"],
        "-curve_client_keys",
        keys["allowed"],
    )


@pytest.mark.slow
def test_curve_with_allowed_client_keys(google_model_dir, keys):
    with allowlisting_server(google_model_dir, keys) as server:
        with client(
            server,
            curve_server_key=keys["server"]["public"],
            curve_client_keys=keys["client"]["secret"],
        ) as bc:
            assert bc.encode(["a secret sentence"]).shape == (1, 32)
        for wrong in (
            {
                "curve_server_key": keys["server"]["public"],
                "curve_client_keys": keys["intruder"]["secret"],
            },
            {"curve_server_key": keys["server"]["public"]},
            {
                "curve_server_key": keys["intruder"]["public"],
                "curve_client_keys": keys["client"]["secret"],
            },
            {},
        ):
            with pytest.raises(HandshakeError, match="CURVE"):
                client(server, **wrong)
        with client(
            server,
            curve_server_key=keys["server"]["public"],
            curve_client_keys=keys["client"]["secret"],
        ) as bc:
            assert bc.encode(["still serving"]).shape == (1, 32)


@pytest.mark.slow
def test_curve_encryption_for_any_client(google_model_dir, keys):
    with running_server(google_model_dir, "-curve_secret_key", keys["server"]["secret"]) as server:
        public = zmq.auth.load_certificate(keys["server"]["public"])[0]
        with client(server, curve_server_key=public.decode()) as bc:
            assert bc.encode(["encrypted"]).shape == (1, 32)
        with pytest.raises(HandshakeError, match="requires CURVE"):
            client(server)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.slow
def test_bind_ip_limits_the_listening_interface(google_model_dir):
    with running_server(google_model_dir, "-bind_ip", "127.0.0.1") as server:
        assert listening_addresses(server.args.port) == {"127.0.0.1"}
        assert listening_addresses(server.args.port_out) == {"127.0.0.1"}
        with client(server) as bc:
            assert bc.encode(["local only"]).shape == (1, 32)
    with running_server(google_model_dir) as server:
        assert listening_addresses(server.args.port) == {"0.0.0.0"}


@pytest.mark.slow
def test_request_size_limit_and_secret_redaction(google_model_dir):
    with running_server(
        google_model_dir, "-max_request_bytes", "2000", "-http_api_key", "s3cret"
    ) as server:
        identity = b"big-sender"
        payload = json.dumps(["word " * 100] * 6).encode()
        frames = raw_request(server, [identity, payload, b"1", b"6"], identity)
        assert "more than -max_request_bytes 2000" in json.loads(frames[1])["error"]
        with client(server) as bc:
            assert bc.encode(["small enough"]).shape == (1, 32)
            config = bc.server_config
        assert config["http_api_key"] == "***"
        assert "s3cret" not in json.dumps(config)


@pytest.mark.slow
def test_http_api_key_and_a_proxy_that_speaks_curve(google_model_dir, keys):
    (http_port,) = free_ports(1)
    with running_server(
        google_model_dir,
        "-http_port",
        str(http_port),
        "-http_api_key",
        "s3cret",
        "-curve_secret_key",
        keys["server"]["secret"],
        "-curve_client_keys",
        keys["allowed"],
    ):
        url = f"http://127.0.0.1:{http_port}"
        body = {"id": 1, "texts": ["hello world"]}
        refused = requests.post(f"{url}/encode", json=body, timeout=30)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        wrong = requests.post(
            f"{url}/encode", json=body, timeout=30, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        for header in ({"Authorization": "Bearer s3cret"}, {"X-API-Key": "s3cret"}):
            answer = requests.post(f"{url}/encode", json=body, headers=header, timeout=30)
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["result"][0]) == 32
        assert requests.get(f"{url}/health", timeout=30).status_code == 200
        assert requests.get(f"{url}/status/server", timeout=30).status_code == 401
