"""The Flask application of the proxy: routes, compression, CORS and request metrics.

``create_app`` only builds the application; ``proxy.run_proxy`` serves it with waitress.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from flask import Flask, Response, g, jsonify, request, send_from_directory
from flask_compress import Compress
from flask_cors import CORS
from werkzeug.exceptions import NotFound

from .. import __version__
from ..logger import get_logger
from ..model.normalization import l2_normalized
from ..model.strategy import PoolingStrategy
from . import tei
from .auth import require_api_key
from .backend import PROBE_TIMEOUT_MS, ServerConnection
from .encode_api import encode_answer, parse_encode_request
from .errors import ApiError, error_response, register_error_handlers
from .link import LinkTimeoutError
from .metrics import CONTENT_TYPE, ProxyMetrics
from .openai import embeddings_answer, parse_embeddings_request
from .openapi_spec import build_spec
from .settings import ProxySettings
from .tokens import TokenCounter

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
UNMATCHED = "unmatched"  # the metrics label of requests no route matched (404, 405)
NOT_AN_OPENAI_EMBEDDING = (
    "the server runs -pooling_strategy NONE: it returns one vector per token, which is not "
    "an OpenAI embedding; use POST /encode for token embeddings"
)
NOT_A_SENTENCE_EMBEDDING = (
    "the server runs -pooling_strategy NONE: it returns one vector per token; "
    "use POST /embed_all for token embeddings"
)
ONLY_SENTENCE_EMBEDDINGS = (
    "the server runs -pooling_strategy {}: it returns one vector per text; token embeddings "
    "need a server started with -pooling_strategy NONE"
)


def create_app(
    settings: ProxySettings, connection: ServerConnection, logger: logging.Logger | None = None
) -> Flask:
    """The proxy's application, reaching its server through ``connection``."""
    logger = logger or get_logger("PROXY", settings.verbose)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.json.sort_keys = False  # answers keep the documented key order
    Compress(app)
    CORS(app, origins=settings.cors)
    register_error_handlers(app, logger)
    require_api_key(app, settings.api_key)
    metrics = ProxyMetrics(lambda: connection.probe("server_status"), logger)
    _measure_requests(app, metrics)
    _add_encoding_routes(app, settings, connection)
    _add_status_routes(app, connection, metrics)
    _add_dashboard_routes(app)
    return app


def _measure_requests(app: Flask, metrics: ProxyMetrics) -> None:
    @app.before_request
    def _start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.observe(endpoint, response.status_code, elapsed, g.get("num_texts", 0))
        return response


def _add_encoding_routes(app: Flask, settings: ProxySettings, connection: ServerConnection):
    tokens = TokenCounter.from_settings(settings.model, settings.encoder)
    served_model = settings.served_model
    token_embeddings = settings.encoder.pooling_strategy == PoolingStrategy.NONE

    @app.post("/encode")
    def encode() -> Response:
        parsed = parse_encode_request()
        vectors = connection.encode(parsed.texts, is_tokenized=parsed.is_tokenized)
        g.num_texts = len(parsed.texts)
        return jsonify(encode_answer(parsed.id, vectors.tolist()))

    @app.post("/v1/embeddings")
    def embeddings() -> Response:
        if token_embeddings:
            raise ApiError(400, NOT_AN_OPENAI_EMBEDDING)
        parsed = parse_embeddings_request(served_model)
        vectors = l2_normalized(connection.encode(parsed.texts))  # OpenAI's are unit length
        answer = embeddings_answer(parsed, vectors, tokens.count(parsed.texts))
        g.num_texts = len(parsed.texts)
        return jsonify(answer)

    _add_tei_routes(app, settings, connection, tokens)


def _add_tei_routes(
    app: Flask, settings: ProxySettings, connection: ServerConnection, tokens: TokenCounter
) -> None:
    """TEI's API (see tei.py), ``POST /`` being ``/embed`` as on a TEI embedding server."""
    pooling = settings.encoder.pooling_strategy
    token_embeddings = pooling == PoolingStrategy.NONE

    def encoded(asked: tei.TeiRequest) -> tuple[np.ndarray, np.ndarray]:
        """The vectors, and the tokens each text was fed."""
        inputs = tei.server_inputs(asked, tokens)
        vectors = connection.encode(inputs.texts, is_tokenized=inputs.is_tokenized)
        tei.checked_dimensions(asked, vectors)
        g.num_texts = len(asked.texts)
        return vectors, inputs.lengths

    @app.post("/")
    @app.post("/embed")
    def embed() -> Response:
        asked = tei.parse_embed_request(tei.fields(), normalize_field=True)
        if token_embeddings:
            raise ApiError(424, NOT_A_SENTENCE_EMBEDDING)
        vectors, _ = encoded(asked)
        return jsonify((l2_normalized(vectors) if asked.normalize else vectors).tolist())

    @app.post("/embed_all")
    def embed_all() -> Response:
        asked = tei.parse_embed_request(tei.fields(), normalize_field=False)
        if not token_embeddings:
            raise ApiError(424, ONLY_SENTENCE_EMBEDDINGS.format(pooling))
        return jsonify(tei.token_vectors(*encoded(asked)))

    @app.post("/tokenize")
    def tokenize() -> Response:
        texts, add_special_tokens = tei.parse_tokenize_request(tei.fields())
        return jsonify(tei.tokenized(texts, add_special_tokens, tokens))

    @app.get("/info")
    def info() -> Response:
        return jsonify(tei.info(settings, tokens))


def _add_status_routes(app: Flask, connection: ServerConnection, metrics: ProxyMetrics) -> None:
    spec = build_spec(__version__)

    @app.get("/status/server")
    def server_status() -> Response:
        return jsonify(connection.server_status())

    @app.get("/status/client")
    def client_status() -> Response:
        return jsonify(connection.client_status())

    @app.get("/health")
    def health() -> Response:
        try:
            config = connection.probe("server_config")
        except LinkTimeoutError:
            return error_response(
                503, f"the server did not answer over ZeroMQ within {PROBE_TIMEOUT_MS} ms"
            )
        return jsonify(
            {
                "status": "ok",
                "ready": bool(config.get("ready")),
                "server_version": str(config.get("server_version")),
                "workers_serving": int(config.get("num_workers_serving", 0)),
            }
        )

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), content_type=CONTENT_TYPE)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(spec)


def _add_dashboard_routes(app: Flask) -> None:
    @app.get("/dashboard")
    @app.get("/dashboard/")
    def dashboard() -> Response:
        return _dashboard_file("index.html")

    @app.get("/dashboard/<path:name>")
    def dashboard_file(name: str) -> Response:
        return _dashboard_file(name)


def _dashboard_file(name: str) -> Response:
    try:
        return send_from_directory(DASHBOARD_DIR, name)
    except NotFound:
        raise ApiError(404, f"no dashboard file {name!r} in this installation") from None
