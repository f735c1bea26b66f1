"""Tutorial: a QA semantic search engine over this project's own FAQ, in a few lines.

The questions of README.md's FAQ are encoded once; a query is encoded the same way and
the closest questions are found by cosine similarity. By default a few fixed queries run;
`--interactive` asks for your own.

    python example/qa_search.py [--topk 3] [--interactive] [--port P --port_out Q]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from helpers import example_parser, server_for

README = Path(__file__).resolve().parent.parent / "README.md"
QUERIES = [
    "how long is the embedding vector?",
    "is it okay to use one client from several threads?",
    "can I run it without a graphics card?",
]
QUESTION = re.compile(r"^\*\*(?P<question>.+?)\*\*\s*(?P<answer>.*)$", re.DOTALL)


def load_faq(readme: Path) -> list[tuple[str, str]]:
    """(question, answer) pairs: the bold-led paragraphs of the README's FAQ section."""
    text = readme.read_text("utf-8")
    match = re.search(r"^## FAQ\s*$(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise SystemExit(f"{readme}: no '## FAQ' section")
    pairs = []
    for paragraph in re.split(r"\n\s*\n", match.group(1)):
        found = QUESTION.match(paragraph.strip())
        if found:
            answer = " ".join(found.group("answer").split())
            pairs.append((found.group("question").strip(), answer))
    return pairs


def top_k(query_vec: np.ndarray, doc_vecs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Indices and cosine scores of the k documents closest to the query."""
    scores = (
        doc_vecs
        @ query_vec
        / (np.linalg.norm(doc_vecs, axis=1) * np.linalg.norm(query_vec) + 1e-12)
    )
    best = np.argsort(-scores)[:k]
    return [(int(i), float(scores[i])) for i in best]


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=README, help="where the FAQ is")
    parser.add_argument("--topk", type=int, default=3, help="answers shown per query")
    parser.add_argument("--interactive", action="store_true", help="ask for queries")
    parser.add_argument("--queries", nargs="+", default=QUERIES, help="queries to run")
    options = parser.parse_args(argv)

    faq = load_faq(options.readme)
    questions = [question for question, _ in faq]
    mean_words = np.mean([len(q.split()) for q in questions])
    print(f"{len(questions)} questions loaded, avg. len of {mean_words:.0f} words")
    with server_for(options) as server, server.client() as bc:
        doc_vecs = bc.encode(questions)
        queries = (
            iter(lambda: input("your question: ").strip(), "")
            if options.interactive
            else iter(options.queries)
        )
        for query in queries:
            print(f"query: {query}")
            ranked = top_k(bc.encode([query])[0], doc_vecs, options.topk)
            for rank, (index, score) in enumerate(ranked, start=1):
                print(f"  {rank}. {score:.3f}  {questions[index]}")
            answer = faq[ranked[0][0]][1]
            print(f"  answer: {answer[:100]}{'...' if len(answer) > 100 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
