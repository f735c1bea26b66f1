"""bert-serving-benchmark: the command as a user runs it on the tiny model, and its parts."""

# run_benchmark wraps the command like test_cli's run_start: same shape, another command.

from __future__ import annotations

import csv
import json
import logging
import platform
import re
import subprocess
import time

import pytest

from bert_serving.client import BertClientTimeoutError
from bert_serving.server.benchmark.experiments import Point, Settings, plan
from bert_serving.server.benchmark.load import Address, client_batches, read_words, time_rounds
from bert_serving.server.benchmark.machine import cpu_model, describe_machine, device_label
from bert_serving.server.benchmark.report import RunInfo, format_table
from bert_serving.server.benchmark.runner import LoadOptions, PointResult, ServerKeeper, measure
from bert_serving.server.cli import benchmark as benchmark_cli
from tests.servers import free_ports, server_args
from tests.test_cli import command

pytestmark = pytest.mark.slow  # the benchmark commands start servers

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMMON = Settings(
    max_seq_len=16, max_batch_size=256, pooling_layer=(-1,), client_batch_size=8, num_client=1
)
# What the smoke run varies: one server-side experiment, two that share one server.
TESTED = {"max_seq_len": [8, 16], "client_batch_size": [1, 8], "num_client": [1, 2]}
OPTIONS = LoadOptions(num_warmup=1, num_repeat=2, seed=0, client_timeout=60)


def run_benchmark(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command("bert-serving-benchmark", "bert_serving.server.cli.benchmark"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def table_rows(stdout: str, experiment: str) -> dict[str, str]:
    """The rows of the printed table of ``experiment``: value -> cell."""
    section = stdout.split(f"#### Speed w.r.t. `{experiment}`", 1)[1].split("####", 1)[0]
    header = re.search(rf"^\| `{experiment}` \| CPU \(\d+ cores\) \|$", section, re.MULTILINE)
    assert header, section
    return dict(re.findall(r"^\| (-?\d+) \| (\S+) \|$", section, re.MULTILINE))


@pytest.fixture(scope="module")
def smoke_run(google_model_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("benchmark")
    argv = [
        "-model_dir",
        str(google_model_dir),
        "-output_dir",
        str(output_dir),
        "-max_seq_len",
        str(COMMON.max_seq_len),
        "-pooling_layer",
        "-1",
        "-client_batch_size",
        str(COMMON.client_batch_size),
        "-num_repeat",
        str(OPTIONS.num_repeat),
        "-test_max_batch_size",  # no values: skipped
        "-test_pooling_layer",
    ]
    for experiment, values in TESTED.items():
        argv += [f"-test_{experiment}", *map(str, values)]
    started = time.monotonic()
    done = run_benchmark(*argv)
    print(f"\nbert-serving-benchmark on the tiny model: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, output_dir


def test_prints_a_table_per_experiment_with_the_tested_values(smoke_run):
    stdout, _ = smoke_run
    assert "| max_seq_len | 16 |" in stdout and "| client_batch_size | 8 |" in stdout
    for experiment, values in TESTED.items():
        rows = table_rows(stdout, experiment)
        assert list(rows) == [str(value) for value in values]
        assert all(float(cell) > 0 for cell in rows.values())
    assert "max_batch_size`" not in stdout and "pooling_layer`" not in stdout


def test_writes_a_png_per_experiment(smoke_run):
    _, output_dir = smoke_run
    assert sorted(path.name for path in output_dir.glob("*.png")) == sorted(
        f"{experiment}.png" for experiment in TESTED
    )
    for experiment in TESTED:
        picture = (output_dir / f"{experiment}.png").read_bytes()
        assert picture.startswith(PNG_SIGNATURE) and len(picture) > 5000


def test_json_has_every_round_of_every_point(smoke_run):
    _, output_dir = smoke_run
    document = json.loads((output_dir / "results.json").read_text())
    assert document["device"].startswith("CPU (")
    assert document["common"]["client_batch_size"] == COMMON.client_batch_size
    assert document["machine"]["cores"] >= 1 and "bert-serving-server" in document["versions"]
    assert list(document["experiments"]) == list(TESTED)
    for experiment, values in TESTED.items():
        points = document["experiments"][experiment]
        assert [point["value"] for point in points] == values
        for point in points:
            assert point["error"] is None
            assert point["settings"][experiment] == point["value"]
            assert [r["warmup"] for r in point["rounds"]] == [True, False, False]
            assert all(r["seconds"] > 0 and r["samples_per_second"] > 0 for r in point["rounds"])
            assert point["summary"]["min"] <= point["summary"]["mean"] <= point["summary"]["max"]


def test_csv_has_a_row_per_point_matching_the_json(smoke_run):
    _, output_dir = smoke_run
    document = json.loads((output_dir / "results.json").read_text())
    with open(output_dir / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    expected = [
        (experiment, str(point["value"]), round(point["summary"]["mean"], 2))
        for experiment, points in document["experiments"].items()
        for point in points
    ]
    assert [(row["experiment"], row["value"], float(row["mean"])) for row in rows] == expected
    assert all(row["rounds"] == "2" and row["error"] == "" for row in rows)


def test_a_setting_the_server_refuses_is_reported_and_the_exit_code_says_so(
    google_model_dir, tmp_path
):
    done = run_benchmark(
        "-model_dir",
        str(google_model_dir),
        "-output_dir",
        str(tmp_path),
        "-experiments",
        "pooling_layer",
        "-test_pooling_layer",
        "-9",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "| -9 | failed |" in done.stdout
    assert "`pooling_layer` = -9 failed: -pooling_layer -9: the model has 3 layers" in done.stdout
    point = json.loads((tmp_path / "results.json").read_text())["experiments"]["pooling_layer"][0]
    assert "the model has 3 layers" in point["error"] and point["summary"] is None
    assert not list(tmp_path.glob("*.png"))


# -- the parts ---------------------------------------------------------------------------


def test_words_come_from_the_vocab_without_special_tokens_or_pieces(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[unused0]\n[CLS]\n##ing\nhello\n\n[\nworld\n!\n", encoding="utf-8")
    assert read_words(vocab) == ["hello", "[", "world", "!"]


def test_sentences_are_deterministic_with_a_seed():
    words = ["alpha", "beta", "gamma", "delta"]
    batches = client_batches(words, num_client=3, client_batch_size=5, length=7, seed=1)
    assert batches == client_batches(words, 3, 5, 7, seed=1)
    assert batches != client_batches(words, 3, 5, 7, seed=2)
    assert [len(batch) for batch in batches] == [5, 5, 5]
    assert batches[0] != batches[1]  # each client sends sentences of its own
    for sentence in (sentence for batch in batches for sentence in batch):
        assert len(sentence.split()) == 7 and set(sentence.split()) <= set(words)


def test_the_lists_parse_and_an_empty_one_skips_its_experiment():
    parser = benchmark_cli.get_benchmark_parser()
    args = parser.parse_args(
        [
            "-test_max_seq_len",
            "20",
            "40",
            "-test_pooling_layer",
            "-1",
            "-3",
            "-test_num_client",
            "-num_worker",
            "2",
        ]
    )
    assert args.test_max_seq_len == [20, 40] and args.test_pooling_layer == [-1, -3]
    assert args.test_num_client == [] and args.num_worker == 2
    assert args.max_seq_len == 40 and args.client_batch_size == 256  # the benchmark's defaults
    assert args.port is None and args.bind_ip == "127.0.0.1"
    tested = {name: getattr(args, f"test_{name}") for name in args.experiments}
    points = plan(COMMON, tested)
    assert {point.experiment for point in points} == {
        "max_seq_len",
        "client_batch_size",
        "max_batch_size",
        "pooling_layer",
    }
    assert [p.settings for p in points if p.experiment == "pooling_layer"] == [
        Settings(16, 256, (-1,), 8, 1),
        Settings(16, 256, (-3,), 8, 1),
    ]


def test_client_side_points_share_the_common_server():
    points = plan(COMMON, {"client_batch_size": [1, 64], "num_client": [4], "max_seq_len": [32]})
    assert [point.experiment for point in points] == [
        "max_seq_len",
        "client_batch_size",
        "client_batch_size",
        "num_client",
    ]
    keys = {point.settings.server_key for point in points[1:]}
    assert keys == {COMMON.server_key} != {points[0].settings.server_key}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-test_max_seq_len", "2", "40"], "-test_max_seq_len 2: values must be at least 4"),
        (["-num_repeat", "0"], "-num_repeat 0: must be at least 1"),
        (["-max_seq_len", "NONE"], "-max_seq_len NONE"),
        (["-num_worker", "0"], "-num_worker 0: must be at least 1"),
        (["-experiments", "num_client", "-test_num_client"], "nothing to measure"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_table_lists_failures_under_it():
    settings = COMMON
    good = PointResult(Point("max_seq_len", 20, settings), 1, [1.0, 8 / 3935.2, 8 / 3935.2])
    slow = PointResult(Point("max_seq_len", 40, settings), 0, [8 / 45.23])
    failed = PointResult(Point("max_seq_len", 999, settings), 1, error="too long")
    table = format_table("max_seq_len", [good, slow, failed], "CPU (2 cores)")
    assert table.splitlines() == [
        "#### Speed w.r.t. `max_seq_len`",
        "",
        "| `max_seq_len` | CPU (2 cores) |",
        "|---|---|",
        "| 20 | 3935 |",
        "| 40 | 45.2 |",
        "| 999 | failed |",
        "",
        "- `max_seq_len` = 999 failed: too long",
    ]


def test_a_point_the_server_refuses_is_a_result_not_an_exception(google_model_dir):
    keeper = ServerKeeper(vars(server_args(google_model_dir)), 60, logging.getLogger(__name__))
    point = Point("pooling_layer", -9, Settings(16, 256, (-9,), 2, 1))
    with keeper:
        result = measure(point, keeper, ["hello", "world"], OPTIONS)
    assert "-pooling_layer -9: the model has 3 layers" in result.error
    assert result.summary() is None and result.round_seconds == []


def test_a_client_without_a_server_times_out_instead_of_hanging():
    address = Address("127.0.0.1", *free_ports(2))
    started = time.monotonic()
    with pytest.raises(BertClientTimeoutError):
        time_rounds(address, [["hello world"], ["good day"]], rounds=2, timeout=1.0)
    assert time.monotonic() - started < 15


def test_plots_are_skipped_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(benchmark_cli, "plots_available", lambda: False)
    result = PointResult(Point("num_client", 2, COMMON), 0, [0.5])
    info = RunInfo(
        started="now",
        command=["bert-serving-benchmark"],
        model={},
        common={},
        load=OPTIONS,
        machine=describe_machine(),
        versions={},
        device="CPU (2 cores)",
    )
    benchmark_cli._write_outputs(tmp_path, info, [result], "tables\n")
    assert "plots skipped: matplotlib is not installed" in capsys.readouterr().out
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "results.csv",
        "results.json",
        "results.md",
    ]


def test_device_column_and_machine_description(tmp_path):
    assert device_label([-1], 2) == "CPU (2 cores)"
    assert device_label([-1, -1], 2) == "CPU (2 cores, 2 workers)"
    assert device_label([0], 8) == "1 GPU"
    assert device_label([0, 1, 0, 1], 8) == "2 GPU (4 workers)"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 1 GHz\n", encoding="utf-8")
    machine = describe_machine(str(cpuinfo))
    assert machine["cpu"] == "Test CPU @ 1 GHz" and machine["cores"] >= 1


def test_the_cpu_is_named_with_its_family_and_model_numbers(tmp_path):
    """Virtual machines name a Zen 3 and a Zen 4 alike ("AMD EPYC"); the numbers of the
    first processor tell them apart."""
    cpuinfo = tmp_path / "cpuinfo"
    block = "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {m}\n"
    block += "model name\t: AMD EPYC\nflags\t\t: fpu avx2\n"
    cpuinfo.write_text(block.format(n=0, m=1) + "\n" + block.format(n=1, m=17), encoding="utf-8")
    assert cpu_model(cpuinfo) == "AMD EPYC, family 25 model 1"
    assert describe_machine(str(cpuinfo))["cpu"] == "AMD EPYC, family 25 model 1"
    assert cpu_model(tmp_path / "absent") == (platform.processor() or None)
