"""Who serves, without processes: the worker registry's liveness rules, the fingerprint that
keeps other vectors out, and the worker's reconnection backoff."""

from __future__ import annotations

import json

import pytest

from bert_serving.server import protocol
from bert_serving.server.args import (
    ArgumentError,
    get_args_parser,
    get_worker_parser,
    validate_args,
    validate_worker_args,
)
from bert_serving.server.model import inspect_model
from bert_serving.server.model.fingerprint import (
    encoding_fingerprint,
    fingerprint_differences,
)
from bert_serving.server.model.settings import EncoderSettings
from bert_serving.server.ventilator.registry import WorkerRegistry, WorkerState
from bert_serving.server.worker.session import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hello(name: str = "host:1/0", seconds_per_token: float = 0.001) -> protocol.Hello:
    return protocol.Hello(name, "host", "CPU", True, "{}", "float32", seconds_per_token)


def registry(clock: Clock, **options) -> WorkerRegistry:
    return WorkerRegistry(
        timeout=3.0, progress_floor=60.0, max_tokens_per_text=128, clock=clock, **options
    )


def test_a_silent_worker_is_lost_after_the_timeout_and_not_before():
    clock = Clock()
    workers = registry(clock)
    workers.register(b"a", hello("a"))
    workers.register(b"b", hello("b"))
    clock.now += 2.9
    assert workers.heard(b"b")
    assert workers.silent() == []
    clock.now += 0.2  # a: 3.1 s of silence; b: 0.2 s
    assert workers.silent() == [b"a"]
    assert not workers.heard(b"stranger"), "a stranger is not a registered worker"


def test_the_progress_bound_adapts_to_the_workers_speed_and_has_a_floor():
    clock = Clock()
    workers = registry(clock)
    fast = workers.register(b"fast", hello("fast", seconds_per_token=0.0001))
    slow = workers.register(b"slow", hello("slow", seconds_per_token=0.01))
    # 256 texts x 128 tokens: the fast one is given the floor, the slow one 10 x 327.7 s
    assert workers.progress_bound(fast, 256) == 60.0
    assert workers.progress_bound(slow, 256) == pytest.approx(10 * 256 * 128 * 0.01)


def test_a_worker_holding_parts_without_returning_any_is_hung():
    clock = Clock()
    workers = registry(clock)
    workers.register(b"w", hello(seconds_per_token=0.01))  # 64 texts: bound 10 x 81.92 s
    held = {b"w": 0}
    assert workers.hung(lambda identity: held[identity], max_batch_size=64) == []
    workers.given_parts(b"w", held_before=0)
    held[b"w"] = 64
    clock.now += 800
    workers.heard(b"w")  # it still beats: silence is not the problem
    assert workers.hung(lambda identity: held[identity], 64) == []
    clock.now += 30  # 830 s > 819.2 s
    assert workers.hung(lambda identity: held[identity], 64) == [b"w"]
    workers.progressed(b"w", still_held=0)  # a part came back: not hung any more
    assert workers.hung(lambda identity: held[identity], 64) == []


def test_progress_restarts_the_clock_while_parts_remain():
    clock = Clock()
    workers = registry(clock)
    workers.register(b"w", hello(seconds_per_token=0.0))
    workers.given_parts(b"w", held_before=0)
    clock.now += 50
    workers.progressed(b"w", still_held=2)
    clock.now += 50  # 100 s since it got parts, 50 s since its last answer
    assert workers.hung(lambda identity: 10, 64) == []
    clock.now += 11
    assert workers.hung(lambda identity: 10, 64) == [b"w"]


def test_losses_and_rejoins_are_counted_and_a_clean_leave_is_no_loss():
    clock = Clock()
    workers = registry(clock)
    workers.register(b"s1", hello("host:1/0"))
    workers.remove(b"s1", WorkerState.LOST)
    workers.register(b"s2", hello("host:1/0"))  # the same worker, a new session
    workers.remove(b"s2", WorkerState.LEFT)
    assert (workers.losses, workers.rejoins) == (1, 1)
    assert workers.describe() == []


def test_describe_lists_what_the_status_shows():
    clock = Clock()
    workers = registry(clock)
    workers.register(b"w", hello("host:7/1"))
    clock.now += 1.5
    (described,) = workers.describe()
    assert described["name"] == "host:7/1" and described["remote"] is True
    assert described["state"] == "serving" and described["last_heartbeat_s"] == 1.5


def test_the_fingerprint_names_every_difference(google_model_dir, hf_model_dir):
    spec = inspect_model(google_model_dir)
    front = encoding_fingerprint(spec, EncoderSettings())
    assert fingerprint_differences(front, json.loads(json.dumps(front))) == []
    other_settings = encoding_fingerprint(
        spec, EncoderSettings(pooling_strategy="CLS_TOKEN", max_seq_len=32)
    )
    differences = fingerprint_differences(front, other_settings)
    assert any("-pooling_strategy" in line and "CLS_TOKEN" in line for line in differences)
    assert any("-max_seq_len" in line for line in differences)
    other_model = encoding_fingerprint(inspect_model(hf_model_dir), EncoderSettings())
    assert any("weights differ" in line for line in fingerprint_differences(front, other_model))
    assert fingerprint_differences(front, {}) != []
    # a worker of a release whose parts this front cannot read: refused, saying so
    older = {key: value for key, value in front.items() if key != "internal_protocol"}
    (difference,) = fingerprint_differences(front, older)
    assert "internal protocol revision 1" in difference and "same bert-serving-server" in difference


def test_backoff_doubles_up_to_a_ceiling_and_resets():
    backoff = Backoff(first=0.5, longest=4.0)
    waits = [backoff.next() for _ in range(6)]
    assert 0.4 <= waits[0] <= 0.6 and all(wait <= 4.8 for wait in waits)
    assert waits[-1] >= 3.2
    backoff.reset()
    assert backoff.next() <= 0.6


def test_a_front_without_local_workers_needs_a_worker_port():
    with pytest.raises(ArgumentError, match="-num_worker 0: must be at least 1"):
        validate_args(get_args_parser().parse_args(["-num_worker", "0"]))
    validate_args(get_args_parser().parse_args(["-num_worker", "0", "-port_worker", "5557"]))
    with pytest.raises(ArgumentError, match="-port_worker 5555: already taken by -port"):
        validate_args(get_args_parser().parse_args(["-port_worker", "5555"]))


def test_worker_arguments_are_checked_with_the_same_rules():
    parse = get_worker_parser().parse_args
    assert validate_worker_args(parse(["-port_worker", "5557"])) == []
    with pytest.raises(ArgumentError) as caught:
        validate_worker_args(
            parse(["-port_worker", "0", "-num_worker", "0", "-curve_secret_key", "/nonexistent"])
        )
    message = str(caught.value)
    assert "-port_worker 0: must be between 1" in message
    assert "-num_worker 0: must be at least 1" in message
    assert "-curve_secret_key /nonexistent: no such file" in message
    assert "-curve_secret_key needs -curve_server_key" in message
