"""Validating the ``messages`` of a chat-completions request the way OpenAI does.

Roles and their content (strings or content parts: text, image_url, and refusal for the assistant),
assistant ``tool_calls`` (content may then be null, as with a ``refusal``), and the pairing OpenAI enforces: a ``tool`` message must answer a
``tool_call_id`` of the assistant message right before it, and every such call must be answered before
the conversation moves on. Params are named like the rest of the simulator: ``messages[2].content[1].type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard_simulator.errors import ApiError, invalid_type, invalid_value, missing, missing_or_wrong

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ROLE_SET = frozenset(ROLES)
#: Part types a role may use (OpenAI's), apart from the ones the simulator's models cannot read.
_PARTS = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
    "function": ("text",),
}
#: Prompt tokens of one image, as OpenAI counts them: 85 at low detail; 765 for a 1024x1024 image
#: (85 + 170 per 512-pixel tile) at high or auto detail, the size assumed since the simulator never
#: fetches the image.
IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765}


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool_call_id: str
    name: str
    content: str


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, once per request
class Conversation:
    #: the text of every message, in order (prompt size)
    texts: list[str]
    #: every message as "role: text", joined (what makes an answer deterministic)
    key: str
    #: the last user message (what difficulty and replay look at)
    question: str
    #: the first system or developer message, if any
    system: str | None
    #: where the first image part is (``messages[i].content[j].type``), for models without vision
    image_param: str | None = None
    image_tokens: int = 0
    #: the tool messages that end the conversation (answers to the last assistant tool calls)
    tool_results: tuple[ToolResult, ...] = ()

    def mentions_json(self) -> bool:
        """Whether any message says "json" (OpenAI requires it for response_format json_object)."""
        return "json" in self.key.lower()


def _image(part: dict[str, Any], param: str) -> tuple[str, int]:
    image = part.get("image_url")
    if not isinstance(image, dict):
        raise invalid_type(f"{param}.image_url", "an object", image)
    url = image.get("url")
    if not isinstance(url, str):
        raise missing_or_wrong(f"{param}.image_url.url", "a string", url)
    if not url.startswith(("http://", "https://", "data:image/")):
        raise invalid_value(
            f"{param}.image_url.url",
            "expected an http(s) URL or a base64-encoded data URL with an image MIME type "
            "(e.g. 'data:image/png;base64,...').",
        )
    detail = image.get("detail", "auto")
    if detail not in IMAGE_TOKENS:
        raise invalid_value(f"{param}.image_url.detail", f"expected one of 'auto', 'low', 'high', got {detail!r}.")
    return f"[image {len(url)} {url[-24:]}]", IMAGE_TOKENS[detail]


class _Parser:
    __slots__ = ("image_param", "image_tokens")

    def __init__(self) -> None:
        self.image_param: str | None = None
        self.image_tokens = 0

    def content(self, role: str, content: Any, param: str) -> str:
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise invalid_type(param, "a string or an array of content parts", content)
        texts = []
        allowed = _PARTS[role]
        for j, part in enumerate(content):
            where = f"{param}[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(kind, str):
                raise invalid_value(where, "expected a content part object with a 'type'.")
            if kind not in allowed:
                raise invalid_value(
                    f"{where}.type", f"{kind!r} is not a content part of a '{role}' message ({', '.join(allowed)})."
                )
            if kind in ("text", "refusal"):
                if not isinstance(part.get(kind), str):
                    raise invalid_type(f"{where}.{kind}", "a string", part.get(kind))
                texts.append(part[kind])
            elif kind == "image_url":
                text, tokens = _image(part, where)
                texts.append(text)
                self.image_tokens += tokens
                if self.image_param is None:
                    self.image_param = f"{where}.type"
            else:  # input_audio, file: no simulated model reads them
                raise ApiError(
                    400, f"Invalid content type. {kind} is only supported by certain models.", param=f"{where}.type"
                )
        return "\n".join(texts)


def _tool_calls(calls: Any, param: str) -> dict[str, str]:
    """``{id: function name}`` of an assistant message's ``tool_calls``."""
    if not isinstance(calls, list):
        raise invalid_type(param, "an array", calls)
    ids: dict[str, str] = {}
    for k, call in enumerate(calls):
        where = f"{param}[{k}]"
        if not isinstance(call, dict):
            raise invalid_type(where, "an object", call)
        call_id, function = call.get("id"), call.get("function")
        if not isinstance(call_id, str):
            raise missing_or_wrong(f"{where}.id", "a string", call_id)
        if call.get("type", "function") != "function":
            raise invalid_value(f"{where}.type", f"expected 'function', got {call.get('type')!r}.")
        if not isinstance(function, dict):
            raise missing_or_wrong(f"{where}.function", "an object", function)
        for field in ("name", "arguments"):
            if not isinstance(function.get(field), str):
                raise invalid_type(f"{where}.function.{field}", "a string", function.get(field))
        ids[call_id] = function["name"]
    return ids


def parse_messages(messages: Any) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            400,
            "Missing required parameter: 'messages' (a non-empty array).",
            param="messages",
            code="missing_required_parameter",
        )
    parser = _Parser()
    texts, lines = [], []
    question = system = None
    pending: dict[str, str] = {}  # tool calls of the last assistant message not answered yet
    pending_at = -1
    results: list[ToolResult] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role not in _ROLE_SET:
            raise invalid_value(f"messages[{i}].role", f"expected one of {list(ROLES)}, got {role!r}.")
        if role != "tool" and pending:
            raise _unanswered(pending_at, pending)
        content = message.get("content")
        calls = message.get("tool_calls") if role == "assistant" else None
        if content is None:
            if role != "assistant":
                raise missing(f"messages[{i}].content")
            if not calls and message.get("function_call") is None and not isinstance(message.get("refusal"), str):
                raise invalid_value(f"messages[{i}].content", "expected a string, got null.")
            text = ""
        else:
            text = parser.content(role, content, f"messages[{i}].content")
        if role == "assistant":
            results = []
            if calls:
                pending, pending_at = _tool_calls(calls, f"messages[{i}].tool_calls"), i
                text += "".join(f" [call {name}]" for name in pending.values())
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise missing_or_wrong(f"messages[{i}].tool_call_id", "a string", call_id)
            if pending_at < 0 or any(messages[k].get("role") != "tool" for k in range(pending_at + 1, i)):
                raise ApiError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a preceding message "
                    "with 'tool_calls'.",
                    param=f"messages[{i}].role",
                )
            name = pending.pop(call_id, None)
            if name is None:
                raise invalid_value(
                    f"messages[{i}].tool_call_id",
                    f"'{call_id}' is not a tool call of the preceding assistant message (or was already answered).",
                )
            results.append(ToolResult(call_id, name, text))
        elif role == "user":
            question, results = text, []
        elif role in ("system", "developer") and system is None:
            system = text
        texts.append(text)
        lines.append(f"{role}: {text}")
    if pending:
        raise _unanswered(pending_at, pending)
    key = "\n".join(lines)
    return Conversation(
        texts=texts,
        key=key,
        question=question if question is not None else texts[-1],
        system=system,
        image_param=parser.image_param,
        image_tokens=parser.image_tokens,
        tool_results=tuple(results) if messages[-1].get("role") == "tool" else (),
    )


def _unanswered(index: int, pending: dict[str, str]) -> ApiError:
    return ApiError(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
        param=f"messages[{index}].role",
    )
