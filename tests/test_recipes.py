"""The recipes of docs/use-it-from.md, run with the real packages against a real server on
all-MiniLM-L6-v2, offline: LangChain, LlamaIndex, huggingface_hub, the async openai client
and AsyncBertClient. Each embeds, matches the ZeroMQ client's vectors (made unit length),
runs a small similarity search, and shows a readable exception for a bad request.

The packages come from tests/requirements-recipes.txt (``make venv`` installs them).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bert_serving.client import AsyncBertClient, BertClient
from bert_serving.server.model.normalization import l2_normalized
from tests.servers import free_ports, running_server

pytestmark = pytest.mark.slow

CORPUS = [
    "Boil the spaghetti in salted water for nine minutes.",
    "The train to Berlin leaves from platform four.",
    "Cats sleep for most of the day.",
    "Interest rates rose again this quarter.",
]
QUERY = "How long do I cook pasta?"
BEST_MATCH = CORPUS[0]
MODEL = "bert"  # any name: the server echoes it
# float32 through JSON (or base64) and back is exact; the rest is the order of float sums
TOLERANCE = 1e-6
LARGEST_DIFFERENCE: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_differences():
    """Print, with ``pytest -s``, each recipe's largest difference from the ZeroMQ client."""
    yield
    for recipe, difference in sorted(LARGEST_DIFFERENCE.items()):
        print(f"\nlargest difference from the ZeroMQ client, {recipe}: {difference:.3g}")


@pytest.fixture(scope="module")
def server():
    (http_port,) = free_ports(1)
    with running_server(
        None, "-http_port", str(http_port), "-pooling_layer", "-1", "-max_seq_len", "64"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def base_url(server) -> str:
    return f"http://127.0.0.1:{server.args.http_port}"


@pytest.fixture(scope="module")
def zeromq_vectors(server) -> dict[str, np.ndarray]:
    """The ZeroMQ client's vectors of the corpus and the query, made unit length."""
    with BertClient(port=server.args.port, port_out=server.args.port_out) as client:
        vectors = l2_normalized(client.encode([*CORPUS, QUERY]))
    return dict(zip([*CORPUS, QUERY], vectors))


def check_vectors(recipe: str, vectors, texts: list[str], expected: dict) -> None:
    difference = float(np.abs(np.asarray(vectors) - [expected[t] for t in texts]).max())
    LARGEST_DIFFERENCE[recipe] = max(difference, LARGEST_DIFFERENCE.get(recipe, 0.0))
    assert difference <= TOLERANCE, f"{recipe}: {difference}"


def best_match(corpus_vectors, query_vector) -> str:
    scores = np.asarray(corpus_vectors) @ np.asarray(query_vector)
    return CORPUS[int(np.argmax(scores))]


def test_zeromq_vectors_rank_the_pasta_sentence_first(zeromq_vectors):
    """The reference the recipes are held to finds the right sentence itself."""
    assert best_match([zeromq_vectors[t] for t in CORPUS], zeromq_vectors[QUERY]) == BEST_MATCH


# -- LangChain ----------------------------------------------------------------------------


def langchain_embeddings(base_url: str, **options):
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(
        model=MODEL,
        base_url=f"{base_url}/v1",
        api_key="unused",
        check_embedding_ctx_length=False,  # else tiktoken downloads a tokenizer
        max_retries=0,
        **options,
    )


def test_langchain_openai_embeddings(base_url, zeromq_vectors):
    from langchain_core.vectorstores import InMemoryVectorStore

    embeddings = langchain_embeddings(base_url)
    check_vectors("langchain", embeddings.embed_documents(CORPUS), CORPUS, zeromq_vectors)
    check_vectors("langchain", [embeddings.embed_query(QUERY)], [QUERY], zeromq_vectors)
    store = InMemoryVectorStore.from_texts(CORPUS, embedding=embeddings)
    (found,) = store.similarity_search(QUERY, k=1)
    assert found.page_content == BEST_MATCH


def test_langchain_shows_the_servers_error(base_url):
    import openai

    embeddings = langchain_embeddings(base_url, dimensions=8)
    with pytest.raises(openai.BadRequestError, match="cannot be shortened"):
        embeddings.embed_query(QUERY)


# -- LlamaIndex ---------------------------------------------------------------------------


def llama_index_embedding(base_url: str):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    return OpenAILikeEmbedding(
        model_name=MODEL, api_base=f"{base_url}/v1", api_key="unused", max_retries=0
    )


def test_llama_index_openai_like_embedding(base_url, zeromq_vectors):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    embedding = llama_index_embedding(base_url)
    vectors = embedding.get_text_embedding_batch(CORPUS)
    check_vectors("llama-index", vectors, CORPUS, zeromq_vectors)
    check_vectors("llama-index", [embedding.get_query_embedding(QUERY)], [QUERY], zeromq_vectors)
    index = VectorStoreIndex([TextNode(text=text) for text in CORPUS], embed_model=embedding)
    (found,) = index.as_retriever(similarity_top_k=1).retrieve(QUERY)
    assert found.node.get_content() == BEST_MATCH


def test_llama_index_shows_the_servers_error(base_url):
    import openai

    with pytest.raises(openai.BadRequestError, match="empty or only whitespace"):
        llama_index_embedding(base_url).get_text_embedding_batch(["  "])


# -- huggingface_hub, TEI's API -----------------------------------------------------------


@pytest.fixture(autouse=True)
def hub_not_offline(monkeypatch):
    """huggingface_hub refuses every URL, this server's too, under HF_HUB_OFFLINE=1 (which
    other test modules set for transformers): the recipe says to leave it unset."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_huggingface_hub_feature_extraction(base_url, zeromq_vectors):
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=base_url)  # posts to the base URL: TEI's POST /
    corpus_vectors = client.feature_extraction(CORPUS)
    assert corpus_vectors.shape == (len(CORPUS), 384)
    check_vectors("huggingface_hub", corpus_vectors, CORPUS, zeromq_vectors)
    (query_vector,) = client.feature_extraction(QUERY)
    check_vectors("huggingface_hub", [query_vector], [QUERY], zeromq_vectors)
    assert best_match(corpus_vectors, query_vector) == BEST_MATCH
    raw = client.feature_extraction(QUERY, normalize=False)
    assert np.linalg.norm(raw) > 1.5  # MiniLM's raw mean-pooled vectors are longer than 1


def test_huggingface_hub_shows_the_servers_error(base_url):
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    client = InferenceClient(model=f"{base_url}/embed")
    with pytest.raises(HfHubHTTPError, match="must have less than 64 tokens") as caught:
        client.feature_extraction("word " * 100, truncate=False)
    assert caught.value.response.status_code == 422


# -- asyncio: the openai package's AsyncOpenAI, and AsyncBertClient ------------------------


def test_async_openai_client(base_url, zeromq_vectors):
    import openai

    async def search() -> tuple[list, list]:
        client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
        corpus, query = await asyncio.gather(
            client.embeddings.create(model=MODEL, input=CORPUS),
            client.embeddings.create(model=MODEL, input=QUERY),
        )
        with pytest.raises(openai.BadRequestError, match="input is empty"):
            await client.embeddings.create(model=MODEL, input=" ")
        await client.close()
        return [item.embedding for item in corpus.data], query.data[0].embedding

    corpus_vectors, query_vector = asyncio.run(search())
    check_vectors("openai async", corpus_vectors, CORPUS, zeromq_vectors)
    check_vectors("openai async", [query_vector], [QUERY], zeromq_vectors)
    assert best_match(corpus_vectors, query_vector) == BEST_MATCH


def test_async_bert_client(server, zeromq_vectors):
    async def search() -> tuple[np.ndarray, np.ndarray]:
        ports = {"port": server.args.port, "port_out": server.args.port_out}
        async with AsyncBertClient(normalize=True, **ports) as client:
            return await asyncio.gather(client.encode(CORPUS), client.encode([QUERY]))

    corpus_vectors, query_vectors = asyncio.run(search())
    check_vectors("AsyncBertClient", corpus_vectors, CORPUS, zeromq_vectors)
    check_vectors("AsyncBertClient", query_vectors, [QUERY], zeromq_vectors)
    assert best_match(corpus_vectors, query_vectors[0]) == BEST_MATCH
