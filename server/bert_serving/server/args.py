"""Command-line arguments of the server, with the names, aliases and defaults of 1.10.

Parsing only checks what a single value can tell (types, ``-max_seq_len > 3``).
``validate_args`` checks values against each other and the file system, and
``check_args_against_model`` checks them against the loaded model, so a bad start
fails with one clear message instead of a stack trace inside a worker process.
"""

# Argument declarations are alike by nature; helpers hold what is shared by both parsers.

from __future__ import annotations

import argparse
import os

from bert_serving.server import __version__
from bert_serving.server.model.fit import settings_problems
from bert_serving.server.model.precision import PRECISIONS
from bert_serving.server.model.runtime import RUNTIMES
from bert_serving.server.model.strategy import PoolingStrategy
from bert_serving.server.security import check_key_files

MIN_MAX_SEQ_LEN = 4
MAX_PORT = 65535
DEFAULT_HTTP_MAX_BODY = 10 * 1024 * 1024
MIN_HTTP_MAX_BODY = 1024
DEFAULT_MAX_REQUEST_BYTES = 100_000_000
DEFAULT_MAX_RESPONSE_BYTES = 4_000_000_000
MIN_WORKER_TIMEOUT = 0.3
SECRET_ARGUMENTS = ("http_api_key",)  # never printed nor sent in SHOW_CONFIG

__all__ = ["ArgumentError", "PoolingStrategy", "get_args_parser", "validate_args"]


class ArgumentError(ValueError):
    """A start argument that cannot work, with a message meant for the user."""


def parse_max_seq_len(text: str) -> int | None:
    """Parse ``-max_seq_len``: an integer above 3, or NONE for the longest text in a batch."""
    if text.strip().upper() == "NONE":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or NONE, got {text!r}") from None
    if value < MIN_MAX_SEQ_LEN:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_MAX_SEQ_LEN} ([CLS], [SEP] and room for text), got {value}"
        )
    return value


def get_args_parser() -> argparse.ArgumentParser:
    """Build the ``bert-serving-start`` parser (also usable from Python, as in 1.10)."""
    parser = argparse.ArgumentParser(
        prog="bert-serving-start",
        description="Start a BERT sentence-encoding service.",
    )
    _add_file_paths(parser.add_argument_group("File Paths"))
    _add_bert_parameters(parser.add_argument_group("BERT Parameters"))
    serving = parser.add_argument_group("Serving Configs")
    _add_serving_configs(serving)
    _add_worker_configs(serving)
    _add_security_configs(parser.add_argument_group("Security and Limits"))
    _add_common(parser)
    return parser


def get_worker_parser() -> argparse.ArgumentParser:
    """Build the ``bert-serving-worker`` parser: the model arguments of ``bert-serving-start``
    under the same names, and where the front is."""
    parser = argparse.ArgumentParser(
        prog="bert-serving-worker",
        description="Start BERT workers on this host for a front started with -port_worker.",
    )
    front = parser.add_argument_group("Front")
    front.add_argument(
        "-ip", type=str, default="localhost", help="host of the front (bert-serving-start)"
    )
    front.add_argument(
        "-port_worker",
        type=int,
        required=True,
        help="the front's -port_worker, where workers register",
    )
    _add_worker_timeout(front)
    front.add_argument(
        "-curve_server_key",
        type=str,
        default=None,
        help="the front's public CURVE key (its .key file): encrypt the link to the front",
    )
    front.add_argument(
        "-curve_secret_key",
        type=str,
        default=None,
        help="this worker's CURVE key pair (.key_secret), for a front that lists worker keys; "
        "default: a new key pair for each start",
    )
    _add_file_paths(parser.add_argument_group("File Paths"))
    _add_bert_parameters(parser.add_argument_group("BERT Parameters"), for_worker=True)
    _add_worker_configs(parser.add_argument_group("Worker Configs"))
    _add_common(parser)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-verbose",
        action="store_true",
        default=False,
        help="log debug messages (and TensorFlow's own) as well",
    )
    parser.add_argument(
        "-version",
        action="version",
        version=f"%(prog)s {__version__}",
    )


def _add_file_paths(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "-model_dir",
        type=str,
        default=None,
        help="folder of a pretrained BERT model; omit it to serve the bundled "
        "all-MiniLM-L6-v2 model",
    )
    group.add_argument(
        "-tuned_model_dir",
        type=str,
        default=None,
        help="folder of a fine-tuned model whose checkpoint replaces the pretrained one",
    )
    group.add_argument(
        "-ckpt_name",
        type=str,
        default="bert_model.ckpt",
        help="checkpoint file name inside the model folder",
    )
    group.add_argument(
        "-config_name",
        type=str,
        default="bert_config.json",
        help="BERT config JSON file name inside the model folder",
    )
    group.add_argument(
        "-graph_tmp_dir",
        type=str,
        default=None,
        help="accepted for compatibility with 1.10 and unused: TensorFlow 2 builds no "
        "frozen graph file",
    )


def _add_bert_parameters(group: argparse._ArgumentGroup, for_worker: bool = False) -> None:
    """The encoding settings; a worker takes -show_tokens_to_client from its front."""
    group.add_argument(
        "-max_seq_len",
        type=parse_max_seq_len,
        default=25,
        help="tokens per sequence, [CLS] and [SEP] included; longer texts are cut on the "
        "right; NONE pads each batch to its longest text instead",
    )
    group.add_argument(
        "-cased_tokenization",
        dest="cased_tokenization",
        action="store_true",
        default=False,
        help="keep letter case when tokenizing (for cased models)",
    )
    group.add_argument(
        "-pooling_layer",
        type=int,
        nargs="+",
        default=[-2],
        help="encoder layers to pool: -1 is the last, -2 the one before; several layers "
        "are concatenated",
    )
    group.add_argument(
        "-pooling_strategy",
        type=PoolingStrategy.from_string,
        default=PoolingStrategy.REDUCE_MEAN,
        metavar="STRATEGY",
        help="how token vectors become one sentence vector, one of "
        f"{', '.join(member.name for member in PoolingStrategy)}; NONE returns every "
        "token's vector",
    )
    group.add_argument(
        "-mask_cls_sep",
        action="store_true",
        default=False,
        help="zero the [CLS] and [SEP] vectors before pooling",
    )
    group.add_argument(
        "-no_special_token",
        action="store_true",
        default=False,
        help="add no [CLS] and [SEP] around the tokens",
    )
    if not for_worker:
        group.add_argument(
            "-show_tokens_to_client",
            action="store_true",
            default=False,
            help="send the tokens of each text back with its encoding",
        )
    group.add_argument(
        "-no_position_embeddings",
        action="store_true",
        default=False,
        help="leave position embeddings out of the input embeddings",
    )
    group.add_argument(
        "-fixed_embed_length",
        action="store_true",
        default=False,
        help="with -max_seq_len NONE and -pooling_strategy NONE, still pad token "
        "encodings to the longest length the model accepts",
    )
    group.add_argument(
        "-normalize",
        action="store_true",
        default=False,
        help="send unit-length (L2-normalized) vectors over ZeroMQ and /encode (1.10 sent "
        "raw ones); /v1/embeddings and /embed normalize anyway",
    )


def _add_serving_configs(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "-port",
        "-port_in",
        "-port_data",
        dest="port",
        type=int,
        default=5555,
        help="port where clients push their requests",
    )
    group.add_argument(
        "-port_out",
        "-port_result",
        dest="port_out",
        type=int,
        default=5556,
        help="port where the server publishes results to clients",
    )
    group.add_argument(
        "-http_port",
        type=int,
        default=None,
        help="also serve HTTP (JSON) requests on this port",
    )
    group.add_argument(
        "-http_max_connect",
        type=int,
        default=10,
        help="most BertClient connections the HTTP proxy keeps open",
    )
    group.add_argument(
        "-http_max_body",
        type=int,
        default=DEFAULT_HTTP_MAX_BODY,
        help="largest HTTP request body the proxy accepts, in bytes; larger ones get 413",
    )
    group.add_argument(
        "-cors",
        type=str,
        default="*",
        help="value of the Access-Control-Allow-Origin header for HTTP answers",
    )
    group.add_argument(
        "-priority_batch_size",
        type=int,
        default=16,
        help="requests smaller than this go ahead of larger ones in the queue",
    )
    group.add_argument(
        "-port_worker",
        type=int,
        default=None,
        help="also let workers on other hosts (bert-serving-worker) register on this TCP port",
    )
    _add_worker_timeout(group)
    group.add_argument(
        "-worker_progress_timeout",
        type=float,
        default=60.0,
        help="seconds a worker may hold parts without returning one before it counts as hung; "
        "longer when its parts should take longer (ten times their expected time)",
    )


def _add_worker_timeout(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "-worker_timeout",
        type=float,
        default=3.0,
        help="seconds of silence after which a worker (or, for a worker, its front) counts as "
        "lost; heartbeats go every third of it",
    )


def _add_worker_configs(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "-num_worker",
        type=int,
        default=1,
        help="worker processes running the model, each on its own device",
    )
    group.add_argument(
        "-max_batch_size",
        type=int,
        default=256,
        help="most texts a worker encodes at once: larger requests are split, "
        "smaller ones waiting together are encoded together",
    )
    group.add_argument(
        "-cpu",
        action="store_true",
        default=False,
        help="run every worker on the CPU even when GPUs exist",
    )
    group.add_argument(
        "-xla",
        action="store_true",
        default=False,
        help="compile the forward pass with XLA (jit_compile), input shapes bucketed",
    )
    group.add_argument(
        "-fp16",
        action="store_true",
        default=False,
        help="return float16 vectors (computed in float16 on GPUs)",
    )
    group.add_argument(
        "-precision",
        choices=PRECISIONS,
        default="auto",
        help="number format of the forward pass: auto is bfloat16 on CPUs with bfloat16 "
        "instructions, AMX or AVX512_BF16 (1.7x to 2.7x faster, cosine to float32 above "
        "0.9998), and float32 elsewhere; float32 for exact vectors; "
        "int8 (opt-in, OpenVINO, cosine to float32 about 0.999) for CPUs with VNNI or AMX",
    )
    group.add_argument(
        "-runtime",
        choices=RUNTIMES,
        default="auto",
        help="what executes the forward pass: tensorflow, or openvino (CPU: float32 with the "
        "same vectors within 1e-5, bfloat16 on CPUs with AVX512_BF16 or AMX, int8); auto "
        "picks the faster for this CPU (docs/encoder.md)",
    )
    group.add_argument(
        "-gpu_memory_fraction",
        type=float,
        default=0.5,
        help="share of a GPU's memory each worker may use, in (0, 1]",
    )
    group.add_argument(
        "-device_map",
        type=int,
        nargs="+",
        default=[],
        help="GPU ids for the workers, reused in turn when there are more workers; "
        "empty picks free GPUs",
    )
    group.add_argument(
        "-prefetch_size",
        type=int,
        default=10,
        help="parts (batches) a worker may hold; those waiting together share a forward pass",
    )


def _add_security_configs(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "-bind_ip",
        type=str,
        default="*",
        help="interface the ports listen on: * for all, or an address such as 127.0.0.1",
    )
    group.add_argument(
        "-max_request_bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="largest request a client may send, in bytes; larger ones get an error",
    )
    group.add_argument(
        "-max_response_bytes",
        type=int,
        default=DEFAULT_MAX_RESPONSE_BYTES,
        help="largest answer the server assembles, in bytes (token embeddings grow fast); "
        "a larger one is an error that says how to split the request",
    )
    group.add_argument(
        "-curve_secret_key",
        type=str,
        default=None,
        help="the server's CURVE key pair (a zmq.auth .key_secret file): encrypt both ports",
    )
    group.add_argument(
        "-curve_client_keys",
        type=str,
        default=None,
        help="folder of the client public keys (zmq.auth .key files) allowed to connect",
    )
    group.add_argument(
        "-curve_worker_keys",
        type=str,
        default=None,
        help="folder of the worker public keys (zmq.auth .key files) allowed on -port_worker",
    )
    group.add_argument(
        "-http_api_key",
        type=str,
        default=os.environ.get("BERT_SERVING_HTTP_API_KEY"),
        help="HTTP requests must send it as 'Authorization: Bearer KEY' or 'X-API-Key'; "
        "default: $BERT_SERVING_HTTP_API_KEY (an environment variable keeps it out of ps)",
    )


def get_shutdown_parser() -> argparse.ArgumentParser:
    """Build the ``bert-serving-terminate`` parser."""
    parser = argparse.ArgumentParser(
        prog="bert-serving-terminate",
        description="Shut down a running BERT service.",
    )
    parser.add_argument(
        "-ip",
        type=str,
        default="localhost",
        help="host of the server to shut down",
    )
    parser.add_argument(
        "-port",
        "-port_in",
        "-port_data",
        dest="port",
        type=int,
        required=True,
        help="request port of the server (its -port)",
    )
    parser.add_argument(
        "-timeout",
        type=int,
        default=5000,
        help="milliseconds to wait for the server to stop",
    )
    parser.add_argument(
        "-curve_server_key",
        default=None,
        help="the server's public key (its .key file): for a server with -curve_secret_key",
    )
    parser.add_argument(
        "-curve_client_keys",
        default=None,
        help="this client's .key_secret file: for a server with -curve_client_keys",
    )
    return parser


def validate_args(args: argparse.Namespace) -> list[str]:
    """Check parsed start arguments together.

    Raises ArgumentError listing every argument that cannot work. Returns warnings
    (settings that work but have no effect) for the caller to show or log.
    """
    return _verdict(
        [
            *_encoding_problems(args),
            *_worker_problems(args, minimum_workers=0 if args.port_worker else 1),
            *_check_at_least("priority_batch_size", args.priority_batch_size, 0),
            *_check_at_least("http_max_connect", args.http_max_connect, 1),
            *_check_at_least("http_max_body", args.http_max_body, MIN_HTTP_MAX_BODY),
            *_check_ports(args.port, args.port_out, args.http_port, args.port_worker),
            *_check_at_least("max_request_bytes", args.max_request_bytes, 1024),
            *_check_at_least("max_response_bytes", args.max_response_bytes, 1024),
            *check_key_files(args.curve_secret_key, args.curve_client_keys, args.curve_worker_keys),
            *_check_worker_timeouts(args.worker_timeout, args.worker_progress_timeout),
        ],
        args,
    )


def validate_worker_args(args: argparse.Namespace) -> list[str]:
    """``validate_args`` for ``bert-serving-worker``: the same checks of the shared options."""
    key_files = {
        "curve_server_key": args.curve_server_key,
        "curve_secret_key": args.curve_secret_key,
    }
    return _verdict(
        [
            *_encoding_problems(args),
            *_worker_problems(args, minimum_workers=1),
            *_check_ports(1, 2, None, args.port_worker),
            *_check_worker_timeouts(args.worker_timeout, args.worker_timeout),
            *[
                f"-{option} {path}: no such file"
                for option, path in key_files.items()
                if path is not None and not os.path.isfile(path)
            ],
            *(
                ["-curve_secret_key needs -curve_server_key (the front's public key)"]
                if args.curve_secret_key and not args.curve_server_key
                else []
            ),
        ],
        args,
    )


def _encoding_problems(args: argparse.Namespace) -> list[str]:
    return [
        *_check_max_seq_len(args.max_seq_len),
        *_check_directory("model_dir", args.model_dir),
        *_check_directory("tuned_model_dir", args.tuned_model_dir),
        *_check_mask_cls_sep(args.mask_cls_sep, args.pooling_strategy),
    ]


def _worker_problems(args: argparse.Namespace, minimum_workers: int) -> list[str]:
    return [
        *_check_at_least("num_worker", args.num_worker, minimum_workers),
        *_check_at_least("max_batch_size", args.max_batch_size, 1),
        *_check_at_least("prefetch_size", args.prefetch_size, 1),
        *_check_memory_fraction(args.gpu_memory_fraction),
        *_check_device_ids(args.device_map),
    ]


def _verdict(errors: list[str], args: argparse.Namespace) -> list[str]:
    """Raise ArgumentError with every problem; else return the warnings."""
    if errors:
        raise ArgumentError("\n".join(errors))
    warnings = []
    if args.fixed_embed_length and args.max_seq_len is not None:
        warnings.append(
            "-fixed_embed_length has no effect unless -max_seq_len is NONE: with "
            f"-max_seq_len {args.max_seq_len} every encoding already has that length"
        )
    return warnings


def check_args_against_model(
    args: argparse.Namespace,
    num_hidden_layers: int,
    max_position_embeddings: int,
    has_pooler: bool,
) -> None:
    """Raise ArgumentError when the arguments ask for more than the model has."""
    problems = settings_problems(
        args.pooling_strategy,
        args.pooling_layer,
        args.max_seq_len,
        num_hidden_layers,
        max_position_embeddings,
        has_pooler,
    )
    if problems:
        raise ArgumentError("\n".join(problems))


def _check_max_seq_len(value: int | None) -> list[str]:
    if value is not None and value < MIN_MAX_SEQ_LEN:
        return [f"-max_seq_len {value}: must be at least {MIN_MAX_SEQ_LEN} or NONE"]
    return []


def _check_at_least(name: str, value: int, minimum: int) -> list[str]:
    if value < minimum:
        return [f"-{name} {value}: must be at least {minimum}"]
    return []


def _check_ports(
    port: int, port_out: int, http_port: int | None, port_worker: int | None = None
) -> list[str]:
    named = {"port": port, "port_out": port_out, "http_port": http_port, "port_worker": port_worker}
    errors = [
        f"-{name} {value}: must be between 1 and {MAX_PORT}"
        for name, value in named.items()
        if value is not None and not 1 <= value <= MAX_PORT
    ]
    if port == port_out:
        errors.append(f"-port and -port_out are both {port}: requests and results need two ports")
    names = list(named)
    for position, name in enumerate(names[2:], start=2):  # each against the ports before it
        value = named[name]
        taken = [earlier for earlier in names[:position] if named[earlier] == value]
        if value is not None and taken:
            errors.append(f"-{name} {value}: already taken by -{' and -'.join(taken)}")
    return errors


def _check_worker_timeouts(silence: float, progress: float) -> list[str]:
    errors = []
    if silence < MIN_WORKER_TIMEOUT:
        errors.append(f"-worker_timeout {silence}: must be at least {MIN_WORKER_TIMEOUT} s")
    if progress < silence:
        errors.append(
            f"-worker_progress_timeout {progress}: must be at least -worker_timeout {silence}"
        )
    return errors


def _check_memory_fraction(value: float) -> list[str]:
    if not 0 < value <= 1:
        return [f"-gpu_memory_fraction {value}: must be in (0, 1]"]
    return []


def _check_device_ids(device_map: list[int]) -> list[str]:
    negative = [device for device in device_map if device < 0]
    if negative:
        return [
            f"-device_map {' '.join(map(str, negative))}: GPU ids start at 0 (use -cpu for the CPU)"
        ]
    return []


def _check_directory(name: str, path: str | None) -> list[str]:
    if path is not None and not os.path.isdir(path):
        return [f"-{name} {path}: no such directory"]
    return []


def _check_mask_cls_sep(mask_cls_sep: bool, strategy: PoolingStrategy) -> list[str]:
    if mask_cls_sep and strategy.reads_special_token:
        return [
            f"-mask_cls_sep with -pooling_strategy {strategy}: that strategy reads the "
            "[CLS] or [SEP] vector, which -mask_cls_sep zeroes or ignores; drop one "
            "of the two"
        ]
    return []
