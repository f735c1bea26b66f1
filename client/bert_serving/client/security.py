"""ZeroMQ CURVE for the client: encryption, and authentication by key when the server
keeps a list of allowed client keys."""

from __future__ import annotations

import os
from typing import Union

import zmq
import zmq.auth

KeySource = Union[str, bytes, "os.PathLike[str]"]


def load_public_key(source: KeySource) -> bytes:
    """A public key given as Z85 text (40 characters) or as a key file of ``zmq.auth``."""
    if isinstance(source, (bytes, str)) and len(source) == 40 and not os.path.exists(source):
        return source.encode("ascii") if isinstance(source, str) else source
    public, _ = zmq.auth.load_certificate(os.fspath(source))
    return public


def load_key_pair(source: KeySource | tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` file of ``zmq.auth`` or given as a pair."""
    if isinstance(source, tuple):
        return source
    public, secret = zmq.auth.load_certificate(os.fspath(source))
    if secret is None:
        raise ValueError(f"{os.fspath(source)} holds no secret key (use the .key_secret file)")
    return public, secret


def curve_client_options(
    server_key: KeySource | None, client_keys: KeySource | tuple[bytes, bytes] | None
) -> dict[int, bytes]:
    """Socket options that make a client socket talk CURVE to the server whose public key is
    ``server_key``; without ``client_keys`` the client uses a fresh key pair (enough for a
    server that accepts any client). Empty when ``server_key`` is None: plain TCP."""
    if server_key is None:
        if client_keys is not None:
            raise ValueError("curve_client_keys needs curve_server_key, the server's public key")
        return {}
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CURVE support")
    public, secret = load_key_pair(client_keys) if client_keys is not None else zmq.curve_keypair()
    return {
        zmq.CURVE_SERVERKEY: load_public_key(server_key),
        zmq.CURVE_PUBLICKEY: public,
        zmq.CURVE_SECRETKEY: secret,
    }
