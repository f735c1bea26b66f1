"""Drive the PyPI ``bert-serving-client==1.10.0`` against a running server; print a JSON report.

This runs with the interpreter of a separate virtualenv (the 1.10 client shares the import
name ``bert_serving.client`` with this project's client), so it imports nothing from the
project. ``tests/test_compat_110.py`` starts the server, runs this file and judges the report.

Usage: ``python client_110_session.py MODE PORT PORT_OUT`` with MODE one of:

- ``session``: one client doing everything a 1.10 user does, with ``check_version=False``;
- ``version_check``: a client built with the defaults, which checks the server's version;
- ``crowd``: several clients built at the same moment, each waiting for its first config;
- ``late_listener``: a client whose subscription reaches the server after its request.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback

import zmq

from bert_serving.client import BertClient, __version__

TIMEOUT_MS = 30000
CROWD_SIZE = 24
LATE_SECONDS = 1.0
CROWD_TIMEOUT_MS = 15000  # a lost first answer is found by this timeout

# A pair, CJK, punctuation, a word split into pieces, a text longer than -max_seq_len 25 and
# more texts than -max_batch_size 4, so that the server splits and truncates.
TEXTS = [
    "hello world",
    "the cat is eating ||| the dog does run",
    "你好么",
    "first do it, then do it right!",
    "unaffable people",
    " ".join(["the big dog"] * 12),
    "what time is it?",
]
TOKENIZED = [
    ["hello", "world"],
    ["the", "cat", "|||", "the", "dog"],
    ["good", "night", "[UNK]", "unaffable"],
]


def as_lists(array) -> list:
    return array.tolist()


def connect(port: int, port_out: int, **options) -> BertClient:
    return BertClient(port=port, port_out=port_out, **options)


def run_session(port: int, port_out: int) -> dict:
    """Every call a 1.10 user makes, each result reduced to JSON."""
    with connect(port, port_out, check_version=False, timeout=TIMEOUT_MS) as bc:
        config = bc.server_config
        status = bc.server_status
        plain = bc.encode(TEXTS)
        shown, tokens = bc.encode(TEXTS, show_tokens=True)
        tokenized, tokenized_tokens = bc.encode(TOKENIZED, is_tokenized=True, show_tokens=True)
        bc.encode(TEXTS[:3], blocking=False)
        bc.encode(TEXTS[3:], blocking=False)
        fetched = bc.fetch_all(concat=True)
        client_status = bc.status
    with connect(port, port_out, check_version=False, timeout=TIMEOUT_MS, output_fmt="list") as bc:
        listed = bc.encode(TEXTS[:2])
    return {
        "client_version": __version__,
        "config": config,
        "status": status,
        "texts": TEXTS,
        "tokenized_texts": TOKENIZED,
        "plain": {"dtype": str(plain.dtype), "vectors": as_lists(plain)},
        "shown": {"vectors": as_lists(shown), "tokens": tokens},
        "tokenized": {"vectors": as_lists(tokenized), "tokens": tokenized_tokens},
        "fetched": {"vectors": as_lists(fetched)},
        "listed": {"type": type(listed).__name__, "vectors": listed},
        "pending_after_fetch": client_status["num_pending_request"],
    }


def run_version_check(port: int, port_out: int) -> dict:
    """A client with every default (check_version=True, no timeout) meets a 2.x server."""
    started = time.monotonic()
    try:
        bc = connect(port, port_out)
    except Exception as error:  # whatever 1.10 raises is the finding
        return {
            "raised": type(error).__name__,
            "message": str(error),
            "seconds": time.monotonic() - started,
        }
    bc.close()
    return {"raised": None, "message": "", "seconds": time.monotonic() - started}


def run_crowd(port: int, port_out: int) -> dict:
    """Clients built in threads released together: each must get its first config answer."""
    barrier = threading.Barrier(CROWD_SIZE)
    outcomes: list[dict] = [{} for _ in range(CROWD_SIZE)]

    def one_client(index: int) -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            with connect(port, port_out, check_version=False, timeout=CROWD_TIMEOUT_MS) as bc:
                outcomes[index] = {"ok": True, "max_seq_len": bc.length_limit}
        except Exception as error:
            outcomes[index] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        outcomes[index]["seconds"] = time.monotonic() - started

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(CROWD_SIZE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": outcomes}


def run_late_listener(port: int, port_out: int) -> dict:
    """The slow joiner made certain: the config request goes out while nobody listens, and
    the subscription follows a second later; 1.10's own receive path then reads the answer."""
    bc = connect(port, port_out, ignore_all_checks=True, timeout=CROWD_TIMEOUT_MS)
    try:
        bc.receiver.close()  # the constructor's subscription: withdrawn before asking
        time.sleep(LATE_SECONDS)
        request_id = bc._send(b"SHOW_CONFIG")
        time.sleep(LATE_SECONDS)
        bc.receiver = bc.context.socket(zmq.SUB)
        bc.receiver.setsockopt(zmq.LINGER, 0)
        bc.receiver.setsockopt(zmq.SUBSCRIBE, bc.identity)
        bc.receiver.setsockopt(zmq.RCVTIMEO, CROWD_TIMEOUT_MS)
        bc.receiver.connect(f"tcp://localhost:{port_out}")
        started = time.monotonic()
        try:
            config = json.loads(bc._recv(request_id).content[1])
        except zmq.error.Again:
            return {"ok": False, "seconds": time.monotonic() - started}
        return {
            "ok": True,
            "seconds": time.monotonic() - started,
            "server_version": config["server_version"],
        }
    finally:
        bc.close()


MODES = {
    "session": run_session,
    "version_check": run_version_check,
    "crowd": run_crowd,
    "late_listener": run_late_listener,
}


def main(argv: list[str]) -> int:
    mode, port, port_out = argv[0], int(argv[1]), int(argv[2])
    try:
        report = MODES[mode](port, port_out)
    except Exception:
        report = {"crashed": traceback.format_exc()}
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
