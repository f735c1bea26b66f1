"""``bert-serving-benchmark``: start servers on this machine and measure their speed.

Each experiment varies one setting (``-test_max_seq_len 20 40 80`` ...) while the others
keep their common values (``-max_seq_len 40`` ...), as 1.10's benchmark did. Every server
argument of ``bert-serving-start`` is accepted and applies to every server started.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bert_serving.server.args import ArgumentError, get_args_parser, validate_args
from bert_serving.server.benchmark.experiments import EXPERIMENTS, Settings, check_values, plan
from bert_serving.server.benchmark.load import read_words
from bert_serving.server.benchmark.machine import (
    describe_machine,
    device_label,
    installed_versions,
    usable_cores,
)
from bert_serving.server.benchmark.plots import plot_experiment, plots_available
from bert_serving.server.benchmark.report import (
    RunInfo,
    format_header,
    format_table,
    write_csv,
    write_json,
)
from bert_serving.server.benchmark.runner import (
    LoadOptions,
    PointResult,
    ServerKeeper,
    run_points,
    timestamp,
)
from bert_serving.server.default_model import default_model_dir
from bert_serving.server.logger import LOGGER_NAMESPACE, get_logger
from bert_serving.server.model import ModelError, ModelSpec, inspect_model

PROG = "bert-serving-benchmark"
LOGGER_COLOR = "light_magenta"
# 1.10 used 2048 texts per request, for GPUs; a 2-core CPU encodes 100 to 200 texts per
# second with all-MiniLM-L6-v2, so 256 keeps a round within seconds and still fills
# whole batches of -max_batch_size.
DEFAULT_CLIENT_BATCH_SIZE = 256
DEFAULT_TESTS = {
    "max_seq_len": [20, 40, 80],
    "client_batch_size": [1, 16, 256, 1024],
    "num_client": [1, 4, 16],
    "max_batch_size": [32, 64, 128, 256],
    "pooling_layer": [-1, -3, -6],
}
PLOTS_HINT = "pip install 'bert-serving-server[benchmark]'"
EMBEDDED_MODEL = "all-MiniLM-L6-v2"  # what serves without -model_dir (default_model.py)


def get_benchmark_parser() -> argparse.ArgumentParser:
    """``bert-serving-start``'s arguments with the benchmark's defaults, and its own."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure how many texts per second servers started on this machine "
        "encode, varying one setting at a time while the others keep their common value "
        "(-max_seq_len, here 40 by default, -max_batch_size, -pooling_layer, "
        "-client_batch_size, -num_client). Servers listen on 127.0.0.1 and free ports "
        "unless -bind_ip, -port or -port_out say otherwise; they run on the CPU unless "
        "-gpu or -device_map is given.",
        parents=[get_args_parser()],
        add_help=False,  # the parent's -h shows every argument
    )
    parser.set_defaults(max_seq_len=40, port=None, port_out=None, bind_ip="127.0.0.1")
    group = parser.add_argument_group("Benchmark")
    group.add_argument(
        "-client_batch_size",
        type=int,
        default=DEFAULT_CLIENT_BATCH_SIZE,
        help=f"texts each client sends per request (default {DEFAULT_CLIENT_BATCH_SIZE})",
    )
    group.add_argument(
        "-num_client",
        type=int,
        default=1,
        help="clients sending at the same time, each a BertClient of its own (default 1)",
    )
    for name, values in DEFAULT_TESTS.items():
        group.add_argument(
            f"-test_{name}",
            type=int,
            nargs="*",
            default=values,
            metavar="VALUE",
            help=f"values of {name} to measure (default {' '.join(map(str, values))}); "
            "no value skips the experiment",
        )
    group.add_argument(
        "-experiments",
        nargs="+",
        choices=EXPERIMENTS,
        default=list(EXPERIMENTS),
        metavar="NAME",
        help=f"experiments to run, of {', '.join(EXPERIMENTS)} (default all)",
    )
    group.add_argument(
        "-num_repeat",
        type=int,
        default=3,
        help="measured rounds per value; each client encodes its batch once a round (default 3)",
    )
    group.add_argument(
        "-num_warmup",
        type=int,
        default=1,
        help="rounds run first and left out of the results (default 1)",
    )
    group.add_argument(
        "-seed",
        type=int,
        default=0,
        help="seed of the random sentences, the same for every run (default 0)",
    )
    group.add_argument(
        "-client_vocab_file",
        type=str,
        default=None,
        help="WordPiece vocabulary the sentences' words are drawn from, without its "
        "[special] entries and ## pieces (default: the model's vocab.txt)",
    )
    group.add_argument(
        "-output_dir",
        type=str,
        default="benchmark-results",
        help="folder for results.json, results.csv, results.md and one PNG per "
        "experiment (default ./benchmark-results)",
    )
    group.add_argument(
        "-wait_till_ready",
        type=float,
        default=300.0,
        help="seconds a server may take to load its workers (default 300)",
    )
    group.add_argument(
        "-client_timeout",
        type=float,
        default=600.0,
        help="seconds a client may wait for one answer before its point fails (default 600)",
    )
    group.add_argument(
        "-gpu",
        action="store_true",
        default=False,
        help="run the servers on GPUs (-device_map names them; by default the CPU is used)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiments; 0 when every point was measured, 1 when any failed."""
    parser = get_benchmark_parser()
    args = parser.parse_args(argv)
    args.cpu = args.cpu or not (args.gpu or args.device_map)
    problems = _check_benchmark_args(args)
    server_args = _server_args(args)
    try:
        validate_args(argparse.Namespace(**{**server_args, "port": 1, "port_out": 2}))
    except ArgumentError as error:
        problems += str(error).splitlines()
    if problems:
        parser.error("\n  ".join(problems))
    logger = get_logger("BENCHMARK", args.verbose, color=LOGGER_COLOR)
    if not args.verbose:
        _quiet_server_logs()
    command = [PROG, *(sys.argv[1:] if argv is None else argv)]
    try:
        return _run(args, server_args, command, logger)
    except KeyboardInterrupt:
        return _fail("interrupted; every server was stopped", status=130)


def _check_benchmark_args(args: argparse.Namespace) -> list[str]:
    problems = []
    if args.max_seq_len is None:
        problems.append("-max_seq_len NONE: the benchmark's sentences need a length in words")
    minimums = {"client_batch_size": 1, "num_client": 1, "num_repeat": 1, "num_warmup": 0}
    problems += [
        f"-{name} {getattr(args, name)}: must be at least {minimum}"
        for name, minimum in minimums.items()
        if getattr(args, name) < minimum
    ]
    problems += [
        f"-{name} {getattr(args, name)}: must be more than 0 seconds"
        for name in ("wait_till_ready", "client_timeout")
        if getattr(args, name) <= 0
    ]
    for experiment in args.experiments:
        problems += check_values(experiment, getattr(args, f"test_{experiment}"))
    if not any(getattr(args, f"test_{experiment}") for experiment in args.experiments):
        problems.append("nothing to measure: every experiment chosen has no -test_ values")
    return problems


def _server_args(args: argparse.Namespace) -> dict[str, object]:
    """The arguments that bert-serving-start knows, as every server of the run gets them."""
    names = vars(get_args_parser().parse_args([]))
    return {name: getattr(args, name) for name in names}


def _quiet_server_logs() -> None:
    """Each of the run's servers logs its start and stop; only its problems matter here."""
    logger = logging.getLogger(f"{LOGGER_NAMESPACE}.VENTILATOR")
    logger.addFilter(lambda record: record.levelno >= logging.WARNING)


def _run(
    args: argparse.Namespace,
    server_args: dict[str, object],
    command: list[str],
    logger: logging.Logger,
) -> int:
    try:
        server_args["model_dir"] = args.model_dir or str(default_model_dir())
        spec = inspect_model(
            server_args["model_dir"], args.tuned_model_dir, args.ckpt_name, args.config_name
        )
        vocab_file = args.client_vocab_file or spec.vocab_path
        words = read_words(vocab_file)
        output_dir = Path(args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
    except (ModelError, OSError) as error:
        return _fail(str(error))
    if not words:
        return _fail(f"{vocab_file}: no whole words to make sentences of")
    common = Settings(
        max_seq_len=args.max_seq_len,
        max_batch_size=args.max_batch_size,
        pooling_layer=tuple(args.pooling_layer),
        client_batch_size=args.client_batch_size,
        num_client=args.num_client,
    )
    options = LoadOptions(args.num_warmup, args.num_repeat, args.seed, args.client_timeout)
    info = _run_info(args, spec, common, options, command)
    sections = [format_header(info)]
    print(sections[0] + "\n", flush=True)
    tested = {name: getattr(args, f"test_{name}") for name in args.experiments}
    results = []
    with ServerKeeper(server_args, args.wait_till_ready, logger) as servers:
        for experiment, points in itertools.groupby(plan(common, tested), lambda p: p.experiment):
            measured = run_points(
                list(points), servers, words, options, lambda result: _log(logger, result)
            )
            info.device = device_label(servers.devices, usable_cores())
            sections.append(format_table(experiment, measured, info.device))
            print(sections[-1] + "\n", flush=True)
            results += measured
    info.finished = timestamp()
    _write_outputs(output_dir, info, results, "\n\n".join(sections) + "\n")
    return 1 if any(result.error is not None for result in results) else 0


def _run_info(
    args: argparse.Namespace,
    spec: ModelSpec,
    common: Settings,
    options: LoadOptions,
    command: list[str],
) -> RunInfo:
    """What the report says about the run besides its points."""
    return RunInfo(
        started=timestamp(),
        command=command,
        model={
            "name": args.model_dir or f"embedded {EMBEDDED_MODEL}",
            "model_dir": str(spec.config_path.parent),
            "num_hidden_layers": spec.config.num_hidden_layers,
            "hidden_size": spec.config.hidden_size,
        },
        common={
            "num_worker": args.num_worker,
            "max_seq_len": common.max_seq_len,
            "client_batch_size": common.client_batch_size,
            "max_batch_size": common.max_batch_size,
            "num_client": common.num_client,
            "pooling_layer": list(common.pooling_layer),
            "pooling_strategy": str(args.pooling_strategy),
            "xla": args.xla,
            "fp16": args.fp16,
            "precision": args.precision,
        },
        load=options,
        machine=describe_machine(),
        versions=installed_versions(),
    )


def _log(logger: logging.Logger, result: PointResult) -> None:
    point = result.point
    summary = result.summary()
    if summary is None:
        logger.warning("%s = %s failed: %s", point.experiment, point.value, result.error)
    else:
        logger.info(
            "%s = %s: %.1f samples/s (%d rounds, %.1f to %.1f)",
            point.experiment,
            point.value,
            summary["mean"],
            len(result.speeds),
            summary["min"],
            summary["max"],
        )


def _write_outputs(
    output_dir: Path, info: RunInfo, results: list[PointResult], markdown: str
) -> None:
    """results.json, results.csv, results.md and the plots; says where they are."""
    write_json(output_dir / "results.json", info, results)
    write_csv(output_dir / "results.csv", results)
    (output_dir / "results.md").write_text(markdown, encoding="utf-8")
    written = ["results.json", "results.csv", "results.md"]
    if plots_available():
        for experiment, measured in itertools.groupby(results, lambda r: r.point.experiment):
            name = f"{experiment}.png"
            if plot_experiment(experiment, list(measured), info.device, output_dir / name):
                written.append(name)
    else:
        print(f"plots skipped: matplotlib is not installed ({PLOTS_HINT})")
    print(f"wrote {', '.join(written)} to {output_dir}")


def _fail(message: str, status: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
