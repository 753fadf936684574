"""Errors in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` and the wording OpenAI uses
for the common request-validation failures (type, range, array length, unsupported value)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


_JSON_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string", list: "an array",
                    dict: "an object", type(None): "null"}


def json_type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "an unsupported value")


def invalid_value(param: str, message: str) -> ApiError:
    return ApiError(400, f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {json_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def out_of_range(param: str, value: float, low: float, high: float, kind: str = "decimal") -> ApiError | None:
    """OpenAI's range error for ``value`` of a ``kind`` ("decimal" or "integer") field, None when in range."""
    if value > high:
        return ApiError(
            400,
            f"Invalid '{param}': {kind} above maximum value. Expected a value <= {high:g}, but got {value:g} instead.",
            param=param,
            code=f"{kind}_above_max_value",
        )
    if value < low:
        return ApiError(
            400,
            f"Invalid '{param}': {kind} below minimum value. Expected a value >= {low:g}, but got {value:g} instead.",
            param=param,
            code=f"{kind}_below_min_value",
        )
    return None


def array_too_long(param: str, length: int, maximum: int) -> ApiError:
    return ApiError(
        400,
        f"Invalid '{param}': array too long. Expected an array with maximum length {maximum}, "
        f"but got an array with length {length} instead.",
        param=param,
        code="array_above_max_length",
    )


def missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def missing_or_wrong(param: str, expected: str, value: Any) -> ApiError:
    """The error for a required field that is absent (None) or not of the ``expected`` type."""
    return missing(param) if value is None else invalid_type(param, expected, value)


def number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    """An optional number in ``[low, high]`` (integers are numbers too; booleans are not)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(name, "a decimal", value)
    if (error := out_of_range(name, value, low, high)) is not None:
        raise error
    return value


def integer(body: dict[str, Any], name: str, low: int, high: int, param: str | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    param = param or name
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value)
    if (error := out_of_range(param, value, low, high, "integer")) is not None:
        raise error
    return value


def boolean(body: dict[str, Any], name: str, param: str | None = None) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid_type(param or name, "a boolean", value)
    return value


def string(body: dict[str, Any], name: str, param: str | None = None) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_type(param or name, "a string", value)
    return value


def obj(body: dict[str, Any], name: str, param: str | None = None) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise invalid_type(param or name, "an object", value)
    return value
