"""The scheduling and reassembly logic of the ventilator, sink and worker, without processes."""

from __future__ import annotations

import json
import logging
import types

import numpy as np
import pytest

from bert_serving.server import protocol
from bert_serving.server.protocol.utf8_texts import pack_texts, spans_to_bytes
from bert_serving.server.sink import Publisher, Sink
from bert_serving.server.ventilator import Scheduler
from bert_serving.server.worker import Inbox, Task, WorkerPlacement
from bert_serving.server.worker.compute import encode_batch
from bert_serving.server.worker.process import _configure_devices

LOGGER = logging.getLogger("test")


def request(texts, client=b"c", request_id=1):
    return protocol.Request(client, request_id, texts=texts)


def submit(scheduler: Scheduler, parsed: protocol.Request) -> tuple[bytes, int]:
    """Queue a request as the ventilator does, with the payload the client sent."""
    return scheduler.submit(parsed, json.dumps(parsed.texts).encode())


def test_large_requests_are_split_and_small_ones_jump_the_queue():
    scheduler = Scheduler(max_batch_size=3, priority_batch_size=2)
    assert submit(scheduler, request([f"t{i}" for i in range(7)], request_id=1)) == (b"1", 3)
    assert submit(scheduler, request(["urgent"], request_id=2)) == (b"2", 1)
    scheduler.worker_ready(b"w0", 2)
    first, second = scheduler.next_assignments()
    assert first[1].request_id == b"2" and first[1].priority
    assert second[1].texts() == ["t0", "t1", "t2"]
    assert scheduler.queued == 2 and scheduler.running == 2
    scheduler.published(b"2")
    assert b"2" not in scheduler.requests


def test_parts_go_only_to_workers_with_credit_and_done_returns_it():
    scheduler = Scheduler(max_batch_size=1, priority_batch_size=0)
    submit(scheduler, request(["a", "b", "c", "d"]))
    scheduler.worker_ready(b"w0", 1)
    scheduler.worker_ready(b"w1", 1)
    assigned = scheduler.next_assignments()
    assert sorted(worker for worker, _ in assigned) == [b"w0", b"w1"]
    assert scheduler.next_assignments() == []
    worker, part = assigned[0]
    scheduler.worker_done(worker, part.key)
    scheduler.worker_done(worker, part.key)  # a repeated DONE gives no extra credit
    assert len(scheduler.next_assignments()) == 1
    assert scheduler.queued == 1


def make_part(
    job: bytes, index: int, texts: list, priority=False, suspect=False, is_tokenized=False
) -> protocol.Part:
    """A part as the ventilator sends it, after a trip through the wire format."""
    if is_tokenized:
        payload, spans = json.dumps(texts).encode(), b""
    else:
        payload, offsets = pack_texts(texts)
        spans = spans_to_bytes(offsets)
    part = protocol.Part(
        job=job,
        client=b"c",
        request_id=job,
        index=index,
        is_tokenized=is_tokenized,
        priority=priority,
        suspect=suspect,
        rows=b"",
        payload=payload,
        spans=spans,
    )
    return protocol.decode([bytes(frame) for frame in part.to_frames()])


def test_worker_inbox_takes_priority_parts_first():
    inbox = Inbox()
    inbox.put(make_part(b"1", 0, ["a"]))
    inbox.put(make_part(b"2", 0, ["b"], priority=True))
    inbox.put(make_part(b"1", 1, [["c"]], is_tokenized=True))
    batches = [inbox.take_batch(max_texts=1) for _ in range(len(inbox))]
    assert [[task.part.key for task in batch] for batch in batches] == [
        [(b"2", 0)],
        [(b"1", 0)],
        [(b"1", 1)],
    ]


def test_worker_inbox_joins_waiting_parts_of_one_kind_up_to_the_batch_size():
    inbox = Inbox()
    for job in (b"1", b"2", b"3"):
        inbox.put(make_part(job, 0, ["x", "y"]))
    inbox.put(make_part(b"4", 0, [["z"]], is_tokenized=True))  # another kind of input
    inbox.put(make_part(b"5", 0, ["w"]))
    assert [t.part.job for t in inbox.take_batch(max_texts=5)] == [b"1", b"2"]
    assert [t.part.job for t in inbox.take_batch(max_texts=5)] == [b"3"]
    assert [t.part.job for t in inbox.take_batch(max_texts=5)] == [b"4"]
    assert [t.part.job for t in inbox.take_batch(max_texts=5, merge=False)] == [b"5"]


def test_a_suspect_part_is_encoded_alone():
    inbox = Inbox()
    inbox.put(make_part(b"1", 0, ["a"]))
    inbox.put(make_part(b"2", 0, ["b"], suspect=True))
    inbox.put(make_part(b"3", 0, ["c"]))
    assert [[t.part.job for t in inbox.take_batch(10)] for _ in range(3)] == [
        [b"1"],
        [b"2"],
        [b"3"],
    ]


class FakeEncoder:
    """Rows are [len(text)]; a text "boom" fails the whole call, as a real error would."""

    def encode(self, texts, is_tokenized=False):
        if "boom" in texts:
            raise ValueError("boom")
        vectors = np.array([[len(text)] for text in texts], np.float32)
        return types.SimpleNamespace(embeddings=vectors, tokens=[[text] for text in texts])


def test_a_joined_batch_is_answered_part_by_part_and_a_failing_part_fails_alone():
    batch = [
        Task.of(make_part(b"1", 0, ["a", "bb"])),
        Task.of(make_part(b"2", 3, ["boom"])),
        Task.of(make_part(b"3", 0, ["cccc"])),
    ]
    first, failed, last = encode_batch(FakeEncoder(), batch, True, LOGGER)
    assert (first.job, first.client, first.request_id, first.index) == (b"1", b"c", b"1", 0)
    array, tokens = first.array()
    assert array.ravel().tolist() == [1, 2] and tokens == [["a"], ["bb"]]
    assert failed == protocol.Failure(b"2", b"c", b"2", "encoding failed: boom", 3)
    assert last.array()[0].ravel().tolist() == [4]


class RecordingSocket:
    def __init__(self):
        self.sent = []

    def send_multipart(self, frames, copy=True):
        self.sent.append([bytes(f) for f in frames])


def subscribed_sink(*clients: bytes) -> tuple[Sink, RecordingSocket]:
    socket = RecordingSocket()
    publisher = Publisher(socket, LOGGER)
    for client in clients:
        publisher.on_subscription(b"\x01" + client)
    return Sink(publisher, LOGGER), socket


def result(client, request_id, part, array, tokens="", job=None, rows=b""):
    """A worker's Result, after a trip through the wire format."""
    sent = protocol.Part(
        job or request_id, client, request_id, part, False, False, False, rows, b""
    )
    frames = protocol.Result.of(sent, array, tokens).to_frames()
    return protocol.decode([bytes(frame) for frame in frames])


def test_sink_reassembles_parts_in_order_even_before_the_job_is_registered():
    sink, socket = subscribed_sink(b"c")
    sink.handle(result(b"c", b"5", 1, np.full((1, 2), 2.0, np.float32), [["b"]]))
    sink.handle(result(b"c", b"5", 0, np.full((2, 2), 1.0, np.float32), [["a"], ["a2"]]))
    assert socket.sent == []
    sink.handle(protocol.JobAnnounced(b"5", b"c", b"5", 2))
    (frames,) = socket.sent
    header = json.loads(frames[1])
    assert header["shape"] == [3, 2] and header["tokens"] == [["a"], ["a2"], ["b"]]
    assert np.frombuffer(frames[2], np.float32).tolist() == [1, 1, 1, 1, 2, 2]
    assert frames[3] == b"5"
    sink.handle(result(b"c", b"5", 0, np.zeros((2, 2), np.float32)))  # late duplicate: dropped
    assert len(socket.sent) == 1


def test_a_one_part_answer_is_published_from_the_received_buffer_without_a_copy():
    published = []
    socket = RecordingSocket()
    socket.send_multipart = lambda frames, copy=True: published.append(frames)
    publisher = Publisher(socket, LOGGER)
    publisher.on_subscription(b"\x01c")
    sink = Sink(publisher, LOGGER)
    received = result(b"c", b"9", 0, np.arange(6, dtype=np.float32).reshape(3, 2))
    sink.handle(protocol.JobAnnounced(b"9", b"c", b"9", 1))
    sink.handle(received)
    (frames,) = published
    vectors = np.frombuffer(frames[2], np.float32)
    assert vectors.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.shares_memory(vectors, np.frombuffer(received.data, np.uint8))


def test_a_large_request_is_cut_by_text_length_and_put_back_in_order():
    texts = ["a" * length for length in (5, 1, 4, 2, 6, 3, 7)]
    scheduler = Scheduler(max_batch_size=3, priority_batch_size=0)
    job, num_parts = submit(scheduler, request(texts))
    parts = scheduler.requests[job]
    assert [part.texts() for part in parts] == [
        ["a", "aa", "aaa"],
        ["aaaa", "aaaaa", "aaaaaa"],
        ["aaaaaaa"],
    ]
    sink, socket = subscribed_sink(b"c")
    sink.handle(protocol.JobAnnounced(job, b"c", b"1", num_parts))
    for part in reversed(parts):  # the sink may get them in any order
        part_texts = part.texts()
        vectors = np.array([[len(text)] for text in part_texts], np.float32)
        sink.handle(
            result(b"c", b"1", part.index, vectors, [[t] for t in part_texts], job, part.rows)
        )
    (frames,) = socket.sent
    assert np.frombuffer(frames[2], np.float32).tolist() == [len(text) for text in texts]
    assert json.loads(frames[1])["tokens"] == [[text] for text in texts]


@pytest.mark.parametrize("payload", [b'["b","a"]', b'["b", "a"]', b'[["b"],["a"]]'])
def test_a_one_part_request_forwards_the_clients_payload_untouched(payload):
    """Plain strings go on with their offsets in the client's bytes, token lists as JSON."""
    scheduler = Scheduler(max_batch_size=3, priority_batch_size=0)
    parsed = protocol.parse_request([b"c", payload, b"1", b"2"])
    job, _ = scheduler.submit(parsed, payload)
    (part,) = scheduler.requests[job]
    assert part.payload is payload and part.rows == b""
    sent = protocol.decode([bytes(frame) for frame in part.to_frames()])
    assert sent.texts() == json.loads(payload)


def test_raw_texts_with_escapes_go_to_the_worker_as_utf8_and_offsets():
    payload = json.dumps(['q"uote', "ünï\ncode", "\ud83d\udc4d"]).encode()
    parsed = protocol.parse_request([b"c", payload, b"1", b"3"])
    assert parsed.spans is None  # escapes: read by json.loads
    scheduler = Scheduler(max_batch_size=3, priority_batch_size=0)
    job, _ = scheduler.submit(parsed, payload)
    (part,) = scheduler.requests[job]
    assert bytes(part.payload) == 'q"uoteünï\ncode👍'.encode()
    sent = protocol.decode([bytes(frame) for frame in part.to_frames()])
    assert sent.texts() == json.loads(payload)


@pytest.mark.parametrize(
    "spans, payload",
    [
        (b"\x01\x02", b"ab"),
        (np.array([[0, 9]], "<i8").tobytes(), b"ab"),
        (np.array([[-1, 1]], "<i8").tobytes(), b"ab"),
        (np.array([[2, 1]], "<i8").tobytes(), b"abc"),
        (b"", b"\xff"),
    ],
    ids=["ragged", "past-the-end", "negative", "reversed", "not-utf8"],
)
def test_a_part_whose_texts_do_not_decode_raises_a_message_error(spans, payload):
    if not spans:
        spans = np.array([[0, 1]], "<i8").tobytes()
    part = protocol.Part(b"1", b"c", b"1", 0, False, False, False, b"", payload, spans)
    with pytest.raises(protocol.MessageError, match="texts do not decode"):
        part.texts()


def test_sink_pads_token_embeddings_of_parts_to_the_longest():
    sink, socket = subscribed_sink(b"c")
    sink.handle(protocol.JobAnnounced(b"1", b"c", b"1", 2))
    sink.handle(result(b"c", b"1", 0, np.ones((1, 3, 2), np.float32)))
    sink.handle(result(b"c", b"1", 1, np.ones((1, 5, 2), np.float32)))
    assert json.loads(socket.sent[0][1])["shape"] == [2, 5, 2]


def test_sink_holds_answers_until_the_client_subscribes():
    sink, socket = subscribed_sink()
    sink.handle(protocol.Reply(b"late", b"1", b'{"a": 1}'))
    assert socket.sent == []
    sink.publisher.on_subscription(b"\x01late")
    assert socket.sent == [[b"late", b'{"a": 1}', b"1"]]


def test_sink_turns_an_error_into_the_error_frames_and_drops_the_rest():
    sink, socket = subscribed_sink(b"c")
    sink.handle(protocol.JobAnnounced(b"9", b"c", b"9", 2))
    sink.handle(protocol.Failure(b"9", b"c", b"9", "encoding failed: boom"))
    sink.handle(result(b"c", b"9", 0, np.ones((1, 2), np.float32)))
    (frames,) = socket.sent
    assert json.loads(frames[1]) == {"error": "encoding failed: boom", "status": 400}
    assert frames[2] == b"" and frames[3] == b"9"


class FakeTensorFlowConfig:
    """Records what a worker asks of TensorFlow's device configuration."""

    def __init__(self, gpus):
        self.calls = []
        config = types.SimpleNamespace(
            threading=types.SimpleNamespace(
                set_intra_op_parallelism_threads=lambda n: self.calls.append(("intra", n)),
                set_inter_op_parallelism_threads=lambda n: self.calls.append(("inter", n)),
            ),
            list_physical_devices=lambda kind: gpus,
            set_logical_device_configuration=lambda gpu, c: self.calls.append(("limit", gpu, c)),
            LogicalDeviceConfiguration=lambda memory_limit: memory_limit,
            experimental=types.SimpleNamespace(
                set_memory_growth=lambda gpu, on: self.calls.append(("growth", gpu, on))
            ),
        )
        self.tf = types.SimpleNamespace(config=config)


def test_cpu_workers_share_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    fake = FakeTensorFlowConfig([])
    _configure_devices(fake.tf, WorkerPlacement(0, b"w", -1, 4), 0.5)
    assert fake.calls == [("intra", 2), ("inter", 1)]


def test_gpu_worker_gets_its_memory_fraction(monkeypatch):
    monkeypatch.setattr(
        "bert_serving.server.worker.process.gpu_memory_limit_mb",
        lambda device, fraction: int(16000 * fraction),
    )
    fake = FakeTensorFlowConfig(["GPU:0"])
    _configure_devices(fake.tf, WorkerPlacement(0, b"w", 3, 0), 0.25)
    assert fake.calls == [("limit", "GPU:0", [4000])]


def test_subscriptions_match_by_prefix_as_in_zeromq():
    sink, socket = subscribed_sink(b"client-")
    sink.handle(protocol.Reply(b"client-1", b"1", b"{}"))
    assert socket.sent == [[b"client-1", b"{}", b"1"]]
    sink.publisher.on_subscription(b"\x00client-")
    sink.handle(protocol.Reply(b"client-2", b"2", b"{}"))
    assert len(socket.sent) == 1 and sink.publisher.held


def test_a_lost_workers_parts_run_again_first_and_a_poison_request_is_refused():
    scheduler = Scheduler(max_batch_size=1, priority_batch_size=0, max_crashes=2)
    submit(scheduler, request(["a", "b", "c"], request_id=4))
    submit(scheduler, request(["d"], request_id=5))
    scheduler.worker_ready(b"w1", 2)
    (_, first), (_, second) = scheduler.next_assignments()
    assert scheduler.worker_lost(b"w1", [first.key]) == []
    assert not first.suspect
    assert [p.key for p in list(scheduler.normal)[:2]] == [first.key, second.key]
    scheduler.worker_ready(b"w2", 1)
    ((_, again),) = scheduler.next_assignments()
    assert again.key == first.key and again.suspect, "sent again, marked to be encoded alone"
    ((poisoned, crashes),) = scheduler.worker_lost(b"w2", [again.key])
    assert (poisoned.client, poisoned.request_id, crashes) == (b"c", b"4", 2)
    assert [p.request_id for p in scheduler.normal] == [b"5"], "the poison request is gone"


def test_after_a_sink_restart_unanswered_requests_run_again():
    scheduler = Scheduler(max_batch_size=1, priority_batch_size=0)
    submit(scheduler, request(["a", "b"], request_id=1))
    submit(scheduler, request(["c"], request_id=2))
    submit(scheduler, request(["d"], request_id=3))
    scheduler.worker_ready(b"w", 3)
    for _, part in scheduler.next_assignments():
        scheduler.worker_done(b"w", part.key)
    scheduler.published(b"2")
    unanswered = scheduler.requeue_unanswered()
    assert [(parts[0].request_id, len(parts)) for parts in unanswered] == [(b"1", 2), (b"3", 1)]
    assert [(p.request_id, p.index) for p in scheduler.normal] == [(b"1", 0), (b"1", 1), (b"3", 0)]


def test_statistics_report_rates_clients_and_latency():
    from bert_serving.server.statistics import ServerStatistics

    statistics = ServerStatistics()
    statistics.record_texts(b"a", b"1", 10)
    statistics.record_texts(b"b", b"2", 4)
    statistics.record_command(b"a")
    statistics.record_finished(b"1")
    statistics.record_finished(b"99")  # unknown: ignored
    snapshot = statistics.snapshot(queued_parts=3, in_flight_parts=1)
    assert snapshot["num_data_request"] == 2 and snapshot["num_total_seq"] == 14
    assert snapshot["num_sys_request"] == 1 and snapshot["num_active_client"] == 2
    assert snapshot["num_recent_client"] == 2
    assert snapshot["recent_seq_per_second"] > 0
    assert snapshot["latency_ms"]["count"] == 1
    assert snapshot["num_queued_parts"] == 3 and snapshot["num_in_flight_parts"] == 1


def test_the_shared_slot_names_the_part_being_encoded():
    keys = [(b"12", 3), (b"14", 0)]
    assert protocol.unpack_part_keys(protocol.pack_part_keys(keys)) == keys
    assert protocol.unpack_part_keys(b"") == []


def test_wrong_frame_counts_are_answered_when_identity_and_id_are_readable():

    with pytest.raises(protocol.BadRequestError, match=r"expected 4 frames .* got 3"):
        protocol.parse_request([b"me", b'["a"]', b"7"])
    with pytest.raises(protocol.BadRequestError, match="got 5"):
        protocol.parse_request([b"me", b'["a"]', b"7", b"1", b"extra"])
    for unanswerable in (
        [b"me"],
        [b"me", b"x"],
        [b"", b"x", b"1", b"1"],
        [b"me", b"x", b"id", b"1"],
    ):
        with pytest.raises(ValueError) as caught:
            protocol.parse_request(unanswerable)
        assert not isinstance(caught.value, protocol.BadRequestError)


def test_a_client_that_reuses_request_ids_gets_every_answer():
    """A restarted client with a fixed identity counts from 1 again: jobs, not request ids,
    key the pipeline, so its new request 1 is not taken for a duplicate of the old one."""
    scheduler = Scheduler(max_batch_size=5, priority_batch_size=0)
    first, _ = submit(scheduler, request(["a"], client=b"fixed", request_id=1))
    second, _ = submit(scheduler, request(["b"], client=b"fixed", request_id=1))
    assert first != second
    sink, socket = subscribed_sink(b"fixed")
    for job in (first, second):
        sink.handle(protocol.JobAnnounced(job, b"fixed", b"1", 1))
        sink.handle(result(b"fixed", b"1", 0, np.ones((1, 2), np.float32), job=job))
    assert len(socket.sent) == 2 and all(frames[3] == b"1" for frames in socket.sent)


def test_statistics_stay_bounded_without_status_requests(monkeypatch):
    """A server nobody asks for status, serving a new client per request (a common misuse),
    must not grow: old rate samples go at once, silent clients after an hour."""
    from bert_serving.server import statistics as module

    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    statistics = module.ServerStatistics()
    for number in range(5000):
        clock[0] += 0.01
        statistics.record_texts(f"client-{number}".encode(), str(number).encode(), 3)
    assert len(statistics.recent) <= module.RECENT_SECONDS / 0.01 + 1
    clock[0] += module.CLIENT_MEMORY_SECONDS + 61
    statistics.record_texts(b"late", b"x", 1)
    assert list(statistics.last_seen) == [b"late"]
    assert list(statistics.requests_per_client) == [b"late"]
    assert statistics.snapshot(0, 0)["num_active_client"] == 1
