"""The load: random sentences from a vocabulary, sent by concurrent clients in timed rounds.

Every client sends its whole batch in one ``encode`` per round, and a round ends when the
last client has its answer, so a round's time is what all clients together waited for.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bert_serving.client import BertClient

# Extra seconds the timing thread waits beyond the clients' own timeout, so that a slow
# client reports its own, clearer error first.
BARRIER_MARGIN_SECONDS = 10.0


@dataclass(frozen=True)
class Address:
    """Where the clients connect."""

    ip: str
    port: int
    port_out: int


def read_words(vocab_file: str | Path) -> list[str]:
    """Whole words of a WordPiece vocabulary: no [special] or [unusedN] entries, no ## pieces.

    Each of them is one token, so a sentence of n such words has n tokens.
    """
    words = []
    with open(vocab_file, encoding="utf-8") as lines:
        for line in lines:
            word = line.strip()
            if word and not word.startswith("##") and not _is_bracketed(word):
                words.append(word)
    return words


def _is_bracketed(word: str) -> bool:
    return len(word) > 2 and word.startswith("[") and word.endswith("]")


def client_batches(
    words: list[str], num_client: int, client_batch_size: int, length: int, seed: int
) -> list[list[str]]:
    """One batch of sentences per client, each sentence ``length`` random words.

    With ``length`` at least the server's max_seq_len, every sentence fills the whole
    sequence: the benchmark measures full-length work. The same seed gives the same batches.
    """
    rng = random.Random(seed)
    return [
        [" ".join(rng.choices(words, k=length)) for _ in range(client_batch_size)]
        for _ in range(num_client)
    ]


def time_rounds(
    address: Address, batches: list[list[str]], rounds: int, timeout: float
) -> list[float]:
    """Seconds of each round in which every client encodes its batch once, all at the same time.

    Each client is a ``BertClient`` of its own, in a thread of its own (ZeroMQ sockets
    belong to one thread). A client that fails or times out (``timeout`` seconds) stops
    the others, and its error is raised here.
    """
    parties = len(batches) + 1
    start = threading.Barrier(parties, timeout=timeout + BARRIER_MARGIN_SECONDS)
    end = threading.Barrier(parties, timeout=timeout + BARRIER_MARGIN_SECONDS)
    errors: list[Exception] = []
    threads = [
        threading.Thread(
            target=_client_rounds,
            args=(address, batch, rounds, timeout, (start, end), errors),
            name=f"benchmark-client-{index}",
            daemon=True,
        )
        for index, batch in enumerate(batches)
    ]
    for thread in threads:
        thread.start()
    seconds = []
    try:
        for _ in range(rounds):
            start.wait()
            began = time.perf_counter()
            end.wait()
            seconds.append(time.perf_counter() - began)
    except threading.BrokenBarrierError:
        if errors:
            raise errors[0] from None
        raise TimeoutError(f"the clients did not finish a round within {timeout} s") from None
    finally:
        start.abort()  # releases clients still waiting, whatever stopped the rounds
        end.abort()
        for thread in threads:
            thread.join(BARRIER_MARGIN_SECONDS)
    return seconds


def _client_rounds(
    address: Address,
    batch: list[str],
    rounds: int,
    timeout: float,
    barriers: tuple[threading.Barrier, threading.Barrier],
    errors: list[Exception],
) -> None:
    start, end = barriers
    try:
        with BertClient(
            address.ip,
            address.port,
            address.port_out,
            timeout=int(timeout * 1000),
            check_length=False,  # the sentences are longer than max_seq_len on purpose
        ) as client:
            for _ in range(rounds):
                start.wait()
                client.encode(batch)
                end.wait()
    except threading.BrokenBarrierError:
        return  # another client failed, or the timing thread gave up
    except Exception as error:  # whatever it is, it is this point's result
        errors.append(error)
        start.abort()
        end.abort()
