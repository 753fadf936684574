"""Parsing and validating a chat-completions request body, with OpenAI-style errors that name the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


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


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    #: the text of every message, in order (prompt size)
    texts: list[str]
    #: the last user message (what difficulty and replay look at)
    question: str
    #: every message as "role: text", joined (what makes an answer deterministic)
    conversation: str
    max_tokens: int | None
    logprobs: bool
    top_logprobs: int
    stream: bool
    include_usage: bool
    seed: int
    #: the first system message, if any (replay records may be keyed on it)
    system: str | None = None


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(400, f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def _message_text(content: Any, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _invalid(f"{param}[{i}]", "expected a content part object with a 'type'.")
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise _invalid(f"{param}[{i}].text", "expected a string.")
                texts.append(part["text"])
        return "\n".join(texts)
    raise _invalid(param, "expected a string, an array of content parts or null.")


def _optional_int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(name, f"expected an integer from {low} to {high}, got {value!r}.")
    return value


def _optional_bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(name, f"expected a boolean, got {value!r}.")
    return value


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            400,
            "Missing required parameter: 'messages' (a non-empty array).",
            param="messages",
            code="missing_required_parameter",
        )
    texts, lines, question, system = [], [], None, None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages[{i}]", "expected an object.")
        role = message.get("role")
        if role not in ROLES:
            raise _invalid(f"messages[{i}].role", f"expected one of {sorted(ROLES)}, got {role!r}.")
        text = _message_text(message.get("content"), f"messages[{i}].content")
        texts.append(text)
        lines.append(f"{role}: {text}")
        if role == "user":
            question = text
        elif role == "system" and system is None:
            system = text
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _invalid(name, f"expected a number, got {value!r}.")
    n = _optional_int(body, "n", 1, 128)
    if n not in (None, 1):
        raise _invalid("n", "the simulator answers one choice per request (n = 1).")
    max_tokens = _optional_int(body, "max_completion_tokens", 1, 1_000_000)
    if max_tokens is None:
        max_tokens = _optional_int(body, "max_tokens", 1, 1_000_000)
    logprobs = _optional_bool(body, "logprobs")
    top_logprobs = _optional_int(body, "top_logprobs", 0, 20)
    if top_logprobs is not None and not logprobs:
        raise _invalid("top_logprobs", "'logprobs' must be set to true when 'top_logprobs' is used.")
    stream = _optional_bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("stream_options", "expected an object.")
    include_usage = bool(options and options.get("include_usage"))
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _invalid("seed", f"expected an integer, got {seed!r}.")
    return ChatRequest(
        model=model,
        texts=texts,
        question=question if question is not None else texts[-1],
        conversation="\n".join(lines),
        max_tokens=max_tokens,
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        stream=stream,
        include_usage=include_usage,
        seed=seed or 0,
        system=system,
    )
