"""The error every modelyard HTTP API raises for a caller's mistake, and the one authentication raises.

``ApiError`` carries an HTTP status, a machine-readable ``code`` and details; each service renders it in
its own shape (the tenant API as ``{"error": code, "message": ...}``, the ingress in OpenAI's shape).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"

    def __init__(self, message: str = "missing or invalid credentials") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})
