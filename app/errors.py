"""The one place errors become HTTP responses: ``{"error": {"code": "...", "message": "..."}}``.

Pipeline errors (``MarklessError`` subclasses), the service's own refusals (queue full, timeout,
auth, body size), FastAPI's validation errors and Starlette's 404/405 all leave through here, so
a client handles a single JSON shape and never sees a traceback. Unexpected exceptions are
logged with the request id and answered with a generic 500.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import (
    ImageTooLargeError,
    InvalidMaskError,
    InvalidParameterError,
    InvalidProfileError,
    JobCancelledError,
    MarklessError,
    ModelNotAvailableError,
    NoSharedMarkError,
    NotEnoughPhotosError,
    UnsupportedImageError,
)

log = logging.getLogger(__name__)

REQUEST_ID_SCOPE_KEY = "markless.request_id"

# Checked along the exception's MRO, so subclasses inherit their parent's status.
STATUS_FOR_ERROR: dict[type[MarklessError], int] = {
    InvalidParameterError: 400,
    InvalidMaskError: 400,
    ImageTooLargeError: 413,
    UnsupportedImageError: 415,
    ModelNotAvailableError: 503,
    NotEnoughPhotosError: 400,
    InvalidProfileError: 400,
    NoSharedMarkError: 422,
    JobCancelledError: 499,
    MarklessError: 400,
}

MAX_MESSAGE_CHARS = 300
"""Error messages are cut to this length: useful to a person, never a mirror of a long input."""

# Codes for errors Starlette/FastAPI raise as plain HTTPExceptions.
CODE_FOR_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    408: "request_timeout",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
    504: "timeout",
}


class ErrorDetail(BaseModel):
    """What went wrong, machine- and human-readable."""

    code: str = Field(description="Stable identifier, e.g. 'unsupported_image', 'queue_full'.")
    message: str = Field(description="Human-readable explanation, safe to show to the user.")


class ErrorResponse(BaseModel):
    """Body of every non-2xx response."""

    error: ErrorDetail


class ServiceError(Exception):
    """A refusal decided by the service itself (not by the pipeline's validation of input)."""

    status_code: int = 500
    code: str = "error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class QueueFullError(ServiceError):
    """Every worker is busy and the waiting line is full: come back later."""

    status_code = 503
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class WorkBudgetFullError(QueueFullError):
    """The admitted jobs' estimated work leaves no room for this one: come back later."""

    code = "work_budget_full"


class WorkTooLargeError(ServiceError):
    """One request's estimated work is over the per-request budget: it is never admitted."""

    status_code = 413
    code = "too_much_work"


class ClientGoneError(ServiceError):
    """The client disconnected before its answer was ready (nginx's 499; nobody reads it)."""

    status_code = 499
    code = "client_closed_request"


class NotReadyError(ServiceError):
    """The models are not loaded (yet, or any more)."""

    status_code = 503
    code = "not_ready"

    def __init__(self, message: str = "the models are not loaded yet", *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class JobTimeoutError(ServiceError):
    """The request did not finish within its time budget."""

    status_code = 504
    code = "timeout"


class UnauthorizedError(ServiceError):
    """Missing or wrong API key."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str, *, invalid_token: bool) -> None:
        challenge = 'Bearer realm="markless"' + (', error="invalid_token"' if invalid_token else "")
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class MarkNotFoundError(ServiceError):
    """No stored mark profile has this id (never learned, deleted, or not an id at all)."""

    status_code = 404
    code = "mark_not_found"


class TooManyMarksError(ServiceError):
    """The mark store holds ``max_marks`` profiles already: delete one before learning another."""

    status_code = 409
    code = "too_many_marks"


class BodyTooLargeError(StarletteHTTPException):
    """The request body passed ``max_body_bytes`` while streaming in.

    An ``HTTPException`` on purpose: FastAPI re-raises those from its body parser (anything else
    becomes a generic 400), so the limit surfaces as a 413 wherever the body is being read.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"request body is larger than the limit of {limit:,} bytes",
            headers={"Connection": "close"},
        )


class BodyTimeoutError(StarletteHTTPException):
    """The request body did not arrive within ``body_timeout_s`` (a slow or stalled client).

    An ``HTTPException`` for the same reason as ``BodyTooLargeError``.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(
            status_code=408,
            detail=f"the request body did not arrive within {seconds:g} s",
            headers={"Connection": "close"},
        )


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON document of an error response (the message bounded in length)."""
    return {"error": {"code": code, "message": bounded(message)}}


def error_response(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A ready-to-send error response (usable as an ASGI app by middlewares)."""
    return JSONResponse(error_body(code, message), status_code=status_code, headers=headers)


def status_for(exc: MarklessError) -> int:
    """HTTP status of a pipeline error."""
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]  # type: ignore[index]
    return 400


def response_for(exc: MarklessError | ServiceError) -> JSONResponse:
    """Map a typed error to its response."""
    if isinstance(exc, ServiceError):
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)
    return error_response(status_for(exc), exc.code, exc.message)


def internal_error_response(request_id: str | None) -> JSONResponse:
    """Generic 500: the details stay in the log, findable by the request id."""
    suffix = f" (request id {request_id})" if request_id else ""
    return error_response(500, "internal_error", f"internal server error{suffix}")


# Our wording for pydantic/FastAPI validation error types (their messages may echo input or
# name Python classes); any other type gets the generic text.
_VALIDATION_TEXT: dict[str, str] = {
    "missing": "is required",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "string_too_long": "is too long",
    "bytes_type": "must be a file",
    "value_error": "must be a file upload, not a text field",
    "greater_than": "is too small",
    "greater_than_equal": "is too small",
    "less_than": "is too large",
    "less_than_equal": "is too large",
}


def describe_validation_errors(errors: Any) -> str:
    """``image: is required; threshold: must be a number`` — our words, never the input."""
    parts: list[str] = []
    for err in list(errors)[:5]:
        loc = [str(p)[:40] for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {_VALIDATION_TEXT.get(str(err.get('type')), 'is not a valid value')}")
    return "; ".join(parts) or "invalid request"


async def _markless_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MarklessError | ServiceError)
    if isinstance(exc, ModelNotAvailableError):
        log.error("model not available: %s", exc.message)
    return response_for(exc)


# The framework's own refusals, in our words (its texts name parser internals or echo input).
_FRAMEWORK_TEXT: dict[int, str] = {
    400: "malformed request: the body is not the multipart form this endpoint expects",
    404: "no such endpoint (see /docs)",
    405: "this endpoint does not take that method",
}
_FRAMEWORK_TEXT_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("Part exceeded maximum size", "a form field is too long"),
    ("Too many files", "too many files in the form"),
    ("Too many fields", "too many fields in the form"),
)


def _framework_message(exc: StarletteHTTPException) -> str:
    if isinstance(exc, BodyTooLargeError | BodyTimeoutError):
        return str(exc.detail)  # ours
    detail = exc.detail if isinstance(exc.detail, str) else ""
    for prefix, text in _FRAMEWORK_TEXT_BY_PREFIX:
        if detail.startswith(prefix):
            return text
    if exc.status_code in _FRAMEWORK_TEXT:
        return _FRAMEWORK_TEXT[exc.status_code]
    try:
        return HTTPStatus(exc.status_code).phrase.lower()
    except ValueError:
        return "error"


def _documented_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for this path.

    Starlette's 405 names only the first route whose path matches, but one path can have several
    (``GET`` and ``DELETE /v1/marks/{id}``); undocumented ones (``HEAD``) stay out.
    """
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), request.url.path):
            return [method.upper() for method in operations]
    return []


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = CODE_FOR_STATUS.get(status, f"http_{status}")
    headers = dict(exc.headers or {})
    if status == 405 and (methods := _documented_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return error_response(status, code, _framework_message(exc), headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", describe_validation_errors(exc.errors()))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get(REQUEST_ID_SCOPE_KEY)
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    return internal_error_response(request_id)


def install_error_handlers(app: FastAPI) -> None:
    """Register every mapping above on ``app``."""
    app.add_exception_handler(MarklessError, _markless_error)
    app.add_exception_handler(ServiceError, _markless_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


# For route declarations: the error statuses each endpoint documents.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad parameter, or a mask of the wrong size."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key (when keys are configured)."},
    408: {"model": ErrorResponse, "description": "The body did not arrive within the body timeout."},
    413: {
        "model": ErrorResponse,
        "description": "Body larger than the byte limit, image over the pixel limit, or more work "
        "than one request may take.",
    },
    415: {"model": ErrorResponse, "description": "Not a supported image (PNG, JPEG, WebP, BMP, TIFF)."},
    422: {"model": ErrorResponse, "description": "Malformed request (missing file, non-numeric field...)."},
    503: {
        "model": ErrorResponse,
        "description": "Job slots or work budget full, or models not loaded; retry after `Retry-After` seconds.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
    504: {"model": ErrorResponse, "description": "The request exceeded its time budget."},
    500: {
        "model": ErrorResponse,
        "description": "A bug: the message is generic, the log has the request id.",
    },
}
MARK_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No mark profile with this id (never learned, or deleted)."}
}
"""For the routes that name a mark profile (``/v1/marks/{id}``, ``/v1/remove`` with ``mark``)."""
