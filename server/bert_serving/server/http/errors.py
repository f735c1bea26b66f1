"""Every error leaves the proxy as JSON ``{"status": code, "error": message}``.

Client mistakes get a 4xx that says what is wrong; only a bug in the proxy gives a 500,
and its details go to the log, not to the caller.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from bert_serving.client import BertClientTimeoutError, BertServerError


class ApiError(Exception):
    """A request the proxy refuses, with the HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> Response:
    response = jsonify({"status": status, "error": message})
    response.status_code = status
    return response


def register_error_handlers(app: Flask, logger: logging.Logger) -> None:
    """Turn every exception a view can raise into a JSON answer."""

    @app.errorhandler(ApiError)
    def _refused(err: ApiError) -> Response:
        return error_response(err.status, err.message)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        response = error_response(err.code or 500, _describe(err))
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(BertServerError)
    def _server_refused(err: BertServerError) -> Response:
        return error_response(400, f"the server refused the request: {err}")

    @app.errorhandler(BertClientTimeoutError)
    def _timeout(err: BertClientTimeoutError) -> Response:
        return error_response(504, str(err))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal error in the HTTP proxy; its log has the details")


def _describe(err: HTTPException) -> str:
    """Messages that name the request, instead of Werkzeug's generic sentences."""
    if isinstance(err, NotFound):
        return f"no such endpoint: {request.path} (the API is described at /openapi.json)"
    if isinstance(err, MethodNotAllowed):
        automatic = {"HEAD", "OPTIONS"}  # Flask adds them to every route
        allowed = ", ".join(sorted(set(err.valid_methods or []) - automatic))
        return f"{request.method} is not allowed on {request.path}; use {allowed}"
    if isinstance(err, RequestEntityTooLarge):
        limit = request.max_content_length
        return f"the request body is larger than the limit of {limit} bytes (-http_max_body)"
    return err.description or err.name
