"""ZeroMQ CURVE for the server's two public sockets (requests in, results out).

With ``-curve_secret_key`` both sockets encrypt; with ``-curve_client_keys`` only clients
whose public key file is in that folder may connect (ZeroMQ's ZAP handshake, answered by
pyzmq's authenticator thread). The server's own key is always allowed, so that its HTTP
proxy can connect as a client.
"""

from __future__ import annotations

from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

WORKER_DOMAIN = "workers"  # the ZAP domain of the worker port: its own list of keys


class CurveKeys:
    """The server's key pair and the client (and worker) keys it accepts (None: any)."""

    def __init__(
        self,
        secret_key_file: str,
        client_keys_dir: str | None = None,
        worker_keys_dir: str | None = None,
    ):
        public, secret = zmq.auth.load_certificate(secret_key_file)
        if secret is None:
            raise ValueError(f"{secret_key_file}: holds no secret key (pass the .key_secret file)")
        self.secret_key_file = secret_key_file
        self.public, self.secret = public, secret
        self.client_keys_dir = client_keys_dir
        self.allowed: set[bytes] | None = None
        if client_keys_dir is not None:
            keys = zmq.auth.load_certificates(client_keys_dir)
            self.allowed = set(keys) | {public}
        self.allowed_workers: set[bytes] | None = None
        if worker_keys_dir is not None:
            self.allowed_workers = set(zmq.auth.load_certificates(worker_keys_dir))

    @classmethod
    def from_args(cls, args) -> CurveKeys | None:
        if args.curve_secret_key is None:
            return None
        return cls(
            args.curve_secret_key,
            args.curve_client_keys,
            getattr(args, "curve_worker_keys", None),
        )

    def secure(self, socket: zmq.Socket) -> None:
        """Make a bound socket a CURVE server."""
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True

    def start_authenticator(self, context: zmq.Context) -> ThreadAuthenticator:
        """Answer the ZAP requests of ``context``'s sockets; stop it when the sockets close."""
        authenticator = ThreadAuthenticator(context)
        authenticator.start()
        for domain in ("*", WORKER_DOMAIN):
            authenticator.configure_curve_callback(domain, credentials_provider=self)
        return authenticator

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: whether a client (or, on the worker port, a worker) with this (Z85) public
        key may connect."""
        allowed = self.allowed_workers if domain == WORKER_DOMAIN else self.allowed
        return allowed is None or key in allowed

    def own_socket_options(self) -> dict:
        """CURVE options (by attribute name) of a socket on the server's side (the HTTP
        proxy's link) that connects with the server's own key pair, which is always let in."""
        return {
            "curve_serverkey": self.public,
            "curve_publickey": self.public,
            "curve_secretkey": self.secret,
        }


def check_key_files(
    secret_key_file: str | None,
    client_keys_dir: str | None,
    worker_keys_dir: str | None = None,
) -> list[str]:
    """Problems with the CURVE options, for argument validation."""
    problems = []
    folders = {"curve_client_keys": client_keys_dir, "curve_worker_keys": worker_keys_dir}
    for option, folder in folders.items():
        if folder is not None and secret_key_file is None:
            problems.append(f"-{option} needs -curve_secret_key (the server's key pair)")
        if folder is not None and not Path(folder).is_dir():
            problems.append(f"-{option} {folder}: no such directory")
    if secret_key_file is not None and not problems:
        try:
            CurveKeys(secret_key_file, client_keys_dir, worker_keys_dir)
        except (OSError, ValueError) as err:
            problems.append(f"-curve_secret_key {secret_key_file}: {err}")
    return problems


def curve_client_options(server_key_file: str | None, secret_key_file: str | None) -> dict:
    """CURVE socket options (by attribute name) for a socket of ours that connects to a
    server (a remote worker to its front, ``bert-serving-terminate``): the server's public
    key, and our key pair (a new one when none is given). Empty without a server key."""
    if server_key_file is None:
        if secret_key_file is not None:
            raise ValueError("a key pair of our own needs the server's public key too")
        return {}
    server_public, _ = zmq.auth.load_certificate(server_key_file)
    if secret_key_file is not None:
        public, secret = zmq.auth.load_certificate(secret_key_file)
        if secret is None:
            raise ValueError(f"{secret_key_file}: holds no secret key (pass the .key_secret file)")
    else:
        public, secret = zmq.curve_keypair()
    return {"curve_serverkey": server_public, "curve_publickey": public, "curve_secretkey": secret}
