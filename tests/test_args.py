"""The start and shutdown arguments: 1.10 names and defaults, and every refusal."""

from __future__ import annotations

import json

import pytest

from bert_serving.server import __version__
from bert_serving.server.args import (
    ArgumentError,
    PoolingStrategy,
    check_args_against_model,
    get_args_parser,
    get_shutdown_parser,
    validate_args,
)

EXPECTED_DEFAULTS = {
    "model_dir": None,
    "tuned_model_dir": None,
    "ckpt_name": "bert_model.ckpt",
    "config_name": "bert_config.json",
    "graph_tmp_dir": None,
    "max_seq_len": 25,
    "cased_tokenization": False,
    "pooling_layer": [-2],
    "pooling_strategy": PoolingStrategy.REDUCE_MEAN,
    "mask_cls_sep": False,
    "no_special_token": False,
    "show_tokens_to_client": False,
    "no_position_embeddings": False,
    "fixed_embed_length": False,
    "normalize": False,
    "port": 5555,
    "port_out": 5556,
    "http_port": None,
    "http_max_connect": 10,
    "http_max_body": 10485760,
    "bind_ip": "*",
    "max_request_bytes": 100_000_000,
    "curve_secret_key": None,
    "curve_client_keys": None,
    "http_api_key": None,
    "cors": "*",
    "num_worker": 1,
    "max_batch_size": 256,
    "priority_batch_size": 16,
    "cpu": False,
    "xla": False,
    "fp16": False,
    "precision": "auto",
    "runtime": "auto",
    "gpu_memory_fraction": 0.5,
    "device_map": [],
    "prefetch_size": 10,
    "verbose": False,
    # new in 2.0: workers on other hosts
    "port_worker": None,
    "worker_timeout": 3.0,
    "worker_progress_timeout": 60.0,
    "curve_worker_keys": None,
    "max_response_bytes": 4_000_000_000,
}
FLAGS = [
    "cased_tokenization",
    "mask_cls_sep",
    "no_special_token",
    "show_tokens_to_client",
    "no_position_embeddings",
    "fixed_embed_length",
    "normalize",
    "cpu",
    "xla",
    "fp16",
    "verbose",
]


def parse(*argv: str):
    return get_args_parser().parse_args(list(argv))


def refusal(*argv: str) -> str:
    with pytest.raises(ArgumentError) as caught:
        validate_args(parse(*argv))
    return str(caught.value)


def test_every_default_matches_1_10_except_the_optional_model_dir():
    assert vars(parse()) == EXPECTED_DEFAULTS


@pytest.mark.parametrize("flag", FLAGS)
def test_flags_switch_on(flag):
    assert getattr(parse(f"-{flag}"), flag) is True


@pytest.mark.parametrize("alias", ["-port", "-port_in", "-port_data"])
def test_port_aliases(alias):
    assert parse(alias, "7000").port == 7000


@pytest.mark.parametrize("alias", ["-port_out", "-port_result"])
def test_port_out_aliases(alias):
    assert parse(alias, "7001").port_out == 7001


def test_values_of_every_kind_parse():
    args = parse(
        "-model_dir",
        "/m",
        "-tuned_model_dir",
        "/t",
        "-ckpt_name",
        "c",
        "-config_name",
        "j",
        "-graph_tmp_dir",
        "/g",
        "-pooling_layer",
        "-4",
        "-3",
        "-1",
        "-http_port",
        "8125",
        "-http_max_connect",
        "3",
        "-cors",
        "example.org",
        "-num_worker",
        "4",
        "-max_batch_size",
        "64",
        "-priority_batch_size",
        "0",
        "-gpu_memory_fraction",
        "0.25",
        "-device_map",
        "0",
        "1",
        "-prefetch_size",
        "2",
    )
    assert (args.model_dir, args.tuned_model_dir, args.ckpt_name) == ("/m", "/t", "c")
    assert (args.config_name, args.graph_tmp_dir) == ("j", "/g")
    assert args.pooling_layer == [-4, -3, -1]
    assert (args.http_port, args.http_max_connect, args.cors) == (8125, 3, "example.org")
    assert (args.num_worker, args.max_batch_size, args.priority_batch_size) == (4, 64, 0)
    assert (args.gpu_memory_fraction, args.device_map, args.prefetch_size) == (0.25, [0, 1], 2)


@pytest.mark.parametrize("text", ["NONE", "none", "None"])
def test_max_seq_len_none_means_dynamic_length(text):
    assert parse("-max_seq_len", text).max_seq_len is None


def test_max_seq_len_accepts_four():
    assert parse("-max_seq_len", "4").max_seq_len == 4


@pytest.mark.parametrize("text", ["3", "0", "-5", "long"])
def test_max_seq_len_refused_at_parse_time(text, capsys):
    with pytest.raises(SystemExit) as caught:
        parse("-max_seq_len", text)
    assert caught.value.code == 2
    assert "-max_seq_len" in capsys.readouterr().err


def test_version_prints_program_and_version(capsys):
    with pytest.raises(SystemExit) as caught:
        parse("-version")
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"bert-serving-start {__version__}"


@pytest.mark.parametrize("strategy", list(PoolingStrategy))
def test_every_pooling_strategy_parses_case_insensitively(strategy):
    assert parse("-pooling_strategy", strategy.name.lower()).pooling_strategy is strategy


def test_unknown_pooling_strategy_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        parse("-pooling_strategy", "AVERAGE")
    err = capsys.readouterr().err
    assert "'AVERAGE'" in err
    assert all(member.name in err for member in PoolingStrategy)


def test_pooling_strategy_prints_and_serialises_as_its_name():
    strategy = PoolingStrategy.REDUCE_MEAN
    assert str(strategy) == "REDUCE_MEAN"
    assert f"{strategy}" == "REDUCE_MEAN"
    assert json.dumps({"pooling_strategy": strategy}) == '{"pooling_strategy": "REDUCE_MEAN"}'


def test_token_aliases_keep_the_name_the_user_gave():
    """CLS_TOKEN and FIRST_TOKEN pool the same token (tests/test_model.py checks the
    vectors); the config shows the name the server was started with."""
    assert PoolingStrategy.CLS_TOKEN is not PoolingStrategy.FIRST_TOKEN
    assert str(parse("-pooling_strategy", "cls_token").pooling_strategy) == "CLS_TOKEN"


def test_valid_defaults_give_no_error_and_no_warning():
    assert validate_args(parse()) == []


def test_existing_model_dirs_are_accepted(tmp_path):
    args = parse("-model_dir", str(tmp_path), "-tuned_model_dir", str(tmp_path))
    assert validate_args(args) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-num_worker", "0"], "-num_worker 0: must be at least 1"),
        (["-max_batch_size", "0"], "-max_batch_size 0: must be at least 1"),
        (["-priority_batch_size", "-1"], "-priority_batch_size -1: must be at least 0"),
        (["-prefetch_size", "0"], "-prefetch_size 0: must be at least 1"),
        (["-http_max_connect", "0"], "-http_max_connect 0: must be at least 1"),
        (["-port", "0"], "-port 0: must be between 1 and 65535"),
        (["-port_out", "70000"], "-port_out 70000: must be between 1 and 65535"),
        (["-http_port", "65536"], "-http_port 65536: must be between 1 and 65535"),
        (["-port", "6000", "-port_out", "6000"], "-port and -port_out are both 6000"),
        (["-http_port", "5555"], "-http_port 5555: already taken"),
        (["-http_port", "5556"], "-http_port 5556: already taken"),
        (["-gpu_memory_fraction", "0"], "-gpu_memory_fraction 0.0: must be in (0, 1]"),
        (["-gpu_memory_fraction", "1.5"], "-gpu_memory_fraction 1.5: must be in (0, 1]"),
        (["-device_map", "0", "-1"], "-device_map -1: GPU ids start at 0"),
        (["-model_dir", "/no/such/dir"], "-model_dir /no/such/dir: no such directory"),
        (["-tuned_model_dir", "/no/such"], "-tuned_model_dir /no/such: no such directory"),
    ],
)
def test_refusals_name_the_option_the_value_and_what_is_allowed(argv, expected):
    assert expected in refusal(*argv)


def test_a_model_dir_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "bert_config.json"
    a_file.write_text("{}")
    assert "no such directory" in refusal("-model_dir", str(a_file))


def test_gpu_memory_fraction_of_one_is_allowed():
    assert validate_args(parse("-gpu_memory_fraction", "1")) == []


def test_max_seq_len_set_in_code_is_checked_too():
    args = parse()
    args.max_seq_len = 2
    with pytest.raises(ArgumentError, match="-max_seq_len 2"):
        validate_args(args)


@pytest.mark.parametrize(
    "strategy", ["FIRST_TOKEN", "CLS_TOKEN", "LAST_TOKEN", "SEP_TOKEN", "CLS_POOLED"]
)
def test_mask_cls_sep_is_refused_with_a_token_strategy(strategy):
    message = refusal("-mask_cls_sep", "-pooling_strategy", strategy)
    assert f"-mask_cls_sep with -pooling_strategy {strategy}" in message
    assert "zeroes" in message


@pytest.mark.parametrize("strategy", ["NONE", "REDUCE_MEAN", "REDUCE_MAX", "REDUCE_MEAN_MAX"])
def test_mask_cls_sep_is_fine_with_other_strategies(strategy):
    assert validate_args(parse("-mask_cls_sep", "-pooling_strategy", strategy)) == []


def test_all_problems_are_reported_at_once():
    message = refusal("-num_worker", "0", "-prefetch_size", "0")
    assert message.splitlines() == [
        "-num_worker 0: must be at least 1",
        "-prefetch_size 0: must be at least 1",
    ]


def test_fixed_embed_length_without_dynamic_length_only_warns():
    (warning,) = validate_args(parse("-fixed_embed_length"))
    assert "-fixed_embed_length has no effect" in warning
    assert "-max_seq_len 25" in warning


def test_fixed_embed_length_with_dynamic_length_is_silent():
    assert validate_args(parse("-fixed_embed_length", "-max_seq_len", "NONE")) == []


def check(*argv: str, layers: int = 6, positions: int = 512, pooler: bool = True) -> None:
    check_args_against_model(parse(*argv), layers, positions, pooler)


@pytest.mark.parametrize("layer", ["-6", "-1", "0", "5"])
def test_pooling_layers_within_the_model_are_accepted(layer):
    check("-pooling_layer", layer)


@pytest.mark.parametrize("layer", ["-7", "6"])
def test_pooling_layers_outside_the_model_are_refused(layer):
    with pytest.raises(ArgumentError) as caught:
        check("-pooling_layer", "-1", layer)
    message = str(caught.value)
    assert f"-pooling_layer {layer}:" in message
    assert "the model has 6 layers, valid values are -6..5" in message


def test_max_seq_len_up_to_the_position_embeddings_is_accepted():
    check("-max_seq_len", "512")
    check("-max_seq_len", "NONE")


def test_max_seq_len_beyond_the_position_embeddings_is_refused():
    with pytest.raises(ArgumentError, match="-max_seq_len 513: the model accepts at most 512"):
        check("-max_seq_len", "513")


def test_cls_pooled_needs_a_pooler():
    check("-pooling_strategy", "CLS_POOLED")
    with pytest.raises(ArgumentError, match="CLS_POOLED: the model has no pooler"):
        check("-pooling_strategy", "CLS_POOLED", pooler=False)


def test_other_strategies_do_not_need_a_pooler():
    check("-pooling_strategy", "CLS_TOKEN", pooler=False)


def test_shutdown_parser_defaults_and_aliases():
    parser = get_shutdown_parser()
    for alias in ("-port", "-port_in", "-port_data"):
        args = parser.parse_args([alias, "5555"])
        assert vars(args) == {
            "ip": "localhost",
            "port": 5555,
            "timeout": 5000,
            "curve_server_key": None,  # new in 2.0: for a server with CURVE
            "curve_client_keys": None,
        }
    args = parser.parse_args(["-ip", "10.0.0.2", "-port", "6000", "-timeout", "100"])
    assert (args.ip, args.port, args.timeout) == ("10.0.0.2", 6000, 100)


def test_shutdown_parser_requires_the_port(capsys):
    with pytest.raises(SystemExit) as caught:
        get_shutdown_parser().parse_args([])
    assert caught.value.code == 2
    assert "-port" in capsys.readouterr().err


def test_helper_keeps_the_1_10_import_path():
    from bert_serving.server.helper import get_args_parser as helper_parser
    from bert_serving.server.helper import get_shutdown_parser as helper_shutdown

    assert helper_parser is get_args_parser
    assert helper_shutdown is get_shutdown_parser
    args = helper_parser().parse_args(["-max_seq_len", "NONE", "-num_worker", "1"])
    assert args.max_seq_len is None
