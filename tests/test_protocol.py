"""The internal messages: every kind survives the wire, and no frames make decode crash."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_serving.server import protocol
from bert_serving.server.protocol import messages

EXAMPLES = {
    protocol.Part: protocol.Part(
        b"7", b"client\x00id", b"3", 2, True, False, True, b"\x01\x02", b"[]"
    ),
    protocol.Ready: protocol.Ready(10),
    protocol.Hello: protocol.Hello("h:1/0", "h", "CPU", True, "{}", "float32", 1.5e-05),
    protocol.Welcome: protocol.Welcome(1000, True),
    protocol.Refused: protocol.Refused("other weights"),
    protocol.Heartbeat: protocol.Heartbeat(),
    protocol.Goodbye: protocol.Goodbye("closing"),
    protocol.Result: protocol.Result(b"7", b"c", b"3", 0, b"", b'{"dtype":"float32"}', b"\0" * 8),
    protocol.Failure: protocol.Failure(b"", b"c", b"3", "encoding failed: ünïcode", 2),
    protocol.JobAnnounced: protocol.JobAnnounced(b"7", b"c", b"3", 4),
    protocol.Reply: protocol.Reply(b"c", b"3", b"{}"),
    protocol.Published: protocol.Published(b"7"),
    protocol.Stop: protocol.Stop(),
}


def test_every_kind_has_an_example():
    assert set(EXAMPLES) == set(messages._KINDS.values())


@pytest.mark.parametrize("kind", list(EXAMPLES), ids=lambda kind: kind.__name__)
def test_every_kind_round_trips_by_name(kind):
    message = EXAMPLES[kind]
    frames = message.to_frames()
    assert frames[0] == kind.KIND
    assert protocol.decode([bytes(frame) for frame in frames]) == message
    assert kind.from_frames(frames) == message


FRAMES_PER_KIND = {  # the kind, its packed small fields (if any), then a frame per Buffer
    protocol.Part: 4,  # payload and spans
    protocol.Result: 3,  # data
    protocol.Failure: 2,
    protocol.JobAnnounced: 2,
    protocol.Published: 2,
    protocol.Ready: 2,
    protocol.Reply: 2,
    protocol.Heartbeat: 1,
    protocol.Stop: 1,
}


@pytest.mark.parametrize("kind", list(FRAMES_PER_KIND), ids=lambda kind: kind.__name__)
def test_the_small_fields_of_a_message_share_one_frame(kind):
    assert len(EXAMPLES[kind].to_frames()) == FRAMES_PER_KIND[kind]


@pytest.mark.parametrize(
    "kind",
    [protocol.Hello, protocol.Welcome, protocol.Refused, protocol.Goodbye],
    ids=lambda kind: kind.__name__,
)
def test_the_session_messages_keep_a_frame_per_field_in_every_revision(kind):
    """A worker of another release must still read why the front turns it away."""
    frames = EXAMPLES[kind].to_frames()
    assert len(frames) == 1 + len(dataclasses.fields(kind))
    refused = protocol.Refused("install the same release").to_frames()
    assert refused == [b"REFUSED", b"install the same release"]  # revision 2's layout


def test_a_packed_frame_that_does_not_hold_its_fields_is_refused():
    kind, packed = protocol.Published(b"17").to_frames()
    for broken in (packed[:-1], packed + b"x", packed[:3]):
        with pytest.raises(protocol.MessageError, match="malformed PUBLISHED"):
            protocol.decode([kind, broken])


def test_a_result_carries_the_array_and_tokens_without_a_copy_on_send():
    part = EXAMPLES[protocol.Part]
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    result = protocol.Result.of(part, array, [["a"], ["b"]])
    assert isinstance(result.data, memoryview)  # the worker's array, not a copy of it
    frames = result.to_frames()
    assert frames[-1] is result.data  # a frame of its own, not copied into the packed one
    received = protocol.decode([bytes(frame) for frame in frames])
    got, tokens = received.array()
    assert np.array_equal(got, array) and tokens == [["a"], ["b"]]
    assert (received.job, received.index, received.rows) == (part.job, part.index, part.rows)


def test_a_message_of_the_wrong_shape_is_refused_with_its_kind_named():
    with pytest.raises(protocol.MessageError, match="PUBLISHED message has 2 frames"):
        protocol.decode([b"PUBLISHED", b"7", b"8"])
    with pytest.raises(protocol.MessageError, match="malformed READY"):
        protocol.decode([b"READY", b"ten"])
    with pytest.raises(protocol.MessageError, match="unknown internal message kind"):
        protocol.decode([b"HOWDY"])
    with pytest.raises(protocol.MessageError, match="unknown"):
        protocol.decode([])


def test_part_keys_survive_the_shared_slot():
    keys = [(b"12", 3), (b"14", 0)]
    assert protocol.unpack_part_keys(protocol.pack_part_keys(keys)) == keys
    assert protocol.unpack_part_keys(b"") == []


def test_a_second_class_of_one_kind_is_refused():
    with pytest.raises(TypeError, match="two message classes"):

        @dataclasses.dataclass(frozen=True)
        class Impostor(protocol.Message):
            KIND = protocol.Stop.KIND


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([kind.KIND for kind in EXAMPLES]),
            st.binary(max_size=24),
            st.text(max_size=8).map(str.encode),
        ),
        max_size=12,
    )
)
def test_decode_never_fails_but_with_a_message_error(frames):
    try:
        message = protocol.decode(frames)
    except protocol.MessageError:
        return
    assert protocol.decode(message.to_frames()) == message
