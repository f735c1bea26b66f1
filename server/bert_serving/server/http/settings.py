"""What the HTTP proxy process needs from the start arguments, built once by the server."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..model.settings import EncoderSettings, ModelLocation
from ..network import http_host
from .backend import ServerAddress


@dataclass(frozen=True)
class ProxySettings:
    http_port: int
    host: str  # the interface waitress binds (-bind_ip)
    threads: int  # -http_max_connect: request threads
    max_body: int
    cors: str
    api_key: str | None
    server: ServerAddress
    model: ModelLocation  # for the tokenizer that counts tokens, and the model's name
    encoder: EncoderSettings  # pooling, lengths, precision: what the answers are
    max_batch_size: int
    verbose: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ProxySettings:
        return cls(
            http_port=args.http_port,
            host=http_host(args.bind_ip),
            threads=args.http_max_connect,
            max_body=args.http_max_body,
            cors=args.cors,
            api_key=args.http_api_key,
            server=ServerAddress.from_args(args),
            model=ModelLocation.from_args(args),
            encoder=EncoderSettings.from_args(args),
            max_batch_size=args.max_batch_size,
            verbose=args.verbose,
        )

    @property
    def served_model(self) -> str:
        """The model's name as OpenAI's and TEI's answers report it: its folder's name."""
        return Path(self.model.tuned_model_dir or self.model.model_dir).name
