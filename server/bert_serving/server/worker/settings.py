"""What a worker process is given: settings shared by a host's workers, its own placement,
and the front it serves."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.settings import EncoderSettings, ModelLocation


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of a server (or of one ``bert-serving-worker``) needs, built once.

    ``fingerprint`` (JSON, see ``model.fingerprint``) is sent to the front, which refuses a
    worker whose vectors would differ from its own.
    """

    model: ModelLocation
    encoder: EncoderSettings
    fingerprint: str
    prefetch_size: int = 10
    max_batch_size: int = 256
    gpu_memory_fraction: float = 0.5
    verbose: bool = False

    @classmethod
    def from_args(cls, args, fingerprint: str) -> WorkerSettings:
        return cls(
            ModelLocation.from_args(args),
            EncoderSettings.from_args(args),
            fingerprint,
            args.prefetch_size,
            args.max_batch_size,
            args.gpu_memory_fraction,
            args.verbose,
        )


@dataclass(frozen=True)
class WorkerPlacement:
    """Which worker this process is, and where it runs."""

    worker_id: int
    identity: bytes  # a local worker's socket identity, new for each replacement
    device_id: int  # -1 for the CPU
    num_cpu_workers: int  # CPU workers of this host, which share its cores


@dataclass(frozen=True)
class FrontAddress:
    """The front a worker serves: its worker endpoint, and how to reach it.

    A local worker (a child of the server) connects over ipc and exits with its parent;
    a remote one (``bert-serving-worker``) connects over TCP, optionally with CURVE, and
    reconnects with backoff whenever the front goes away, for as long as it runs.
    """

    endpoint: str
    remote: bool = False
    curve: dict = field(default_factory=dict)  # serverkey, publickey, secretkey (Z85)
