"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``, so OpenAI clients
raise their usual exception classes (``AuthenticationError``, ``RateLimitError``, ...).

``x-should-retry`` tells the official clients whether a retry makes sense: never after the query
was submitted (a retry would be a second, separately metered query), always when the ingress was
merely too busy to take it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from modelyard_tenancy import ApiError
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        code: str | None = None,
        param: str | None = None,
        retry: bool | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra
        self.headers = dict(headers or {})
        if retry is not None:
            self.headers["x-should-retry"] = "true" if retry else "false"

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code, **self.extra}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, *, param: str | None = None, code: str | None = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code, retry=False)


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def from_tenant_error(exc: ApiError) -> OpenAIError:
    """``modelyard_tenancy``'s errors (401 from authentication above all) in OpenAI's shape."""
    code = "invalid_api_key" if exc.status == 401 else exc.code
    kind = _TYPE_BY_STATUS.get(exc.status, "server_error")
    return OpenAIError(exc.status, exc.message, type=kind, code=code, headers=exc.headers, retry=exc.status >= 500)


def _describe(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{param or 'body'}: {first.get('msg', 'invalid')}{more}", param


def install_error_handlers(app: FastAPI) -> None:
    async def on_openai_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenAIError)
        return exc.response()

    async def on_tenant_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return from_tenant_error(exc).response()

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _describe(list(exc.errors()))
        return bad_request(message, param=param).response()

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = _TYPE_BY_STATUS.get(exc.status_code, "server_error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return OpenAIError(exc.status_code, message, type=kind, code=None, retry=False, headers=exc.headers).response()

    async def on_database_error(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %r", exc)
        return OpenAIError(503, "credentials cannot be checked right now (database unavailable)", type="server_error",
                           code="unavailable", retry=True, headers={"Retry-After": "2"}).response()

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return OpenAIError(500, "internal error", type="server_error", code="internal_error", retry=False).response()

    app.add_exception_handler(OpenAIError, on_openai_error)
    app.add_exception_handler(ApiError, on_tenant_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(PyMongoError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
