"""Errors of the tenant API and their JSON shape: ``{"error": code, "message": ..., **details}``.

``ApiError`` and ``Unauthenticated`` come from ``modelyard_tenancy`` (authentication raises them in
every HTTP service); the rest are the tenant API's own.

Validation errors keep FastAPI's own 422 shape (``{"detail": [{"loc", "msg", "type"}, ...]}``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from modelyard_tenancy import ApiError, Unauthenticated  # noqa: F401 - the tenant API's errors, all in one place
from pymongo.errors import ConnectionFailure

log = logging.getLogger(__name__)


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class QuotaExceeded(Forbidden):
    code = "quota_exceeded"


class FeatureNotInTier(Forbidden):
    code = "feature_not_in_tier"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class TooManyAttempts(ApiError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)}, retry_after_s=retry_after_s)


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class Busy(ApiError):
    status = 503
    code = "busy"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class Unavailable(ApiError):
    status = 503
    code = "unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


def field_error(field: str, message: str, kind: str = "value_error") -> InvalidField:
    return InvalidField([{"loc": ["body", *field.split(".")], "msg": message, "type": kind}])


class InvalidField(Exception):
    """A body that passed the schema but breaks a rule only the database can check (a reference)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def on_invalid_field(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidField)
        return JSONResponse({"detail": exc.errors}, status_code=422)

    async def on_database_unreachable(_: Request, exc: Exception) -> JSONResponse:
        # A restarted or unreachable MongoDB: PyMongo reconnects on the next request, so this is a
        # "retry shortly", not an internal error. (A write cut off mid-flight may or may not have landed.)
        log.warning("database unreachable: %r", exc)
        return await on_api_error(_, Unavailable("the database is unreachable right now; retry shortly"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(InvalidField, on_invalid_field)
    app.add_exception_handler(ConnectionFailure, on_database_unreachable)
