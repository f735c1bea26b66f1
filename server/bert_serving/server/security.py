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


class CurveKeys:
    """The server's key pair and the client keys it accepts (None: any client)."""

    def __init__(self, secret_key_file: str, client_keys_dir: str | None = None):
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

    @classmethod
    def from_args(cls, args) -> CurveKeys | None:
        if args.curve_secret_key is None:
            return None
        return cls(args.curve_secret_key, args.curve_client_keys)

    def secure(self, socket: zmq.Socket) -> None:
        """Make a bound socket a CURVE server."""
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True

    def start_authenticator(self, context: zmq.Context) -> ThreadAuthenticator:
        """Answer the ZAP requests of ``context``'s sockets; stop it when the sockets close."""
        authenticator = ThreadAuthenticator(context)
        authenticator.start()
        authenticator.configure_curve_callback("*", credentials_provider=self)
        return authenticator

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: whether a client with this (Z85) public key may connect."""
        return self.allowed is None or key in self.allowed

    def client_options(self) -> dict:
        """What a client on the server's side (the HTTP proxy) passes to BertClient."""
        return {"curve_server_key": self.public, "curve_client_keys": (self.public, self.secret)}


def check_key_files(secret_key_file: str | None, client_keys_dir: str | None) -> list[str]:
    """Problems with the CURVE options, for argument validation."""
    problems = []
    if client_keys_dir is not None and secret_key_file is None:
        problems.append("-curve_client_keys needs -curve_secret_key (the server's key pair)")
    if secret_key_file is not None:
        try:
            CurveKeys(secret_key_file, client_keys_dir)
        except (OSError, ValueError) as err:
            problems.append(f"-curve_secret_key {secret_key_file}: {err}")
    if client_keys_dir is not None and not Path(client_keys_dir).is_dir():
        problems.append(f"-curve_client_keys {client_keys_dir}: no such directory")
    return problems
