"""OpenAI's chat-completions request, translated into a ``QuerySubmitted`` (or a 400/404 saying why not).

What maps where (the full table, with the test behind each row: docs/openai-compatibility.md):

* The conversation. A conversation of text turns ending with the user's travels as before: the last
  user message is the query's ``text``, earlier turns its ``history`` (``developer`` counts as
  ``system``). Anything more — assistant messages with ``tool_calls``, ``tool`` / ``function``
  results, image parts, names — travels whole, as OpenAI ``messages``, and reaches the model as the
  caller wrote it; ``text`` is then the last user message's text (what the router and the judging of
  the answer read).
* Generation parameters (``Generation``: temperature, top_p, max_tokens, max_completion_tokens, stop,
  seed, penalties, logit_bias, logprobs, top_logprobs, n, response_format, tools, tool_choice,
  parallel_tool_calls, functions, function_call, user, reasoning_effort) travel on the query and reach
  the model unchanged. Out-of-range values are a 400 naming the field here (OpenAI's bounds).
* ``stream: true`` asks the worker to stream the tokens of a final route to this instance's partition
  of ``queries.streams`` (``stream_to``).
* ``model``: ``auto`` lets the router decide; ``slm``, ``llm``, ``llm_plus`` pin a class; a model of
  the pricing table pins that model (an image for a pinned model that reads none is a 400 here).
* ``agent_id``, ``user_role`` and ``agent_type`` come from the body's extra fields or, failing that,
  from ``metadata``; ``metadata`` is carried on the query and echoed on its outcome.
* Any other field is accepted and ignored (forward compatibility).
"""

from __future__ import annotations

from typing import Any

from modelyard_core.pricing import PricingTable
from modelyard_events import ChatMessage, Generation, ModelClass, QuerySubmitted, StreamTo
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import OpenAIError, bad_request

AUTO = "auto"
OWNER = "modelyard"

#: Roles of a conversation that travels as text turns; every OpenAI role may travel as ``messages``.
_TEXT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_MESSAGE_ROLES = frozenset({*_TEXT_ROLES, "tool", "function"})
GENERATION_FIELDS = tuple(Generation.model_fields)


class TextPart(BaseModel):
    """A content part: ``text``, ``image_url`` or any other (passed on; the model says what it reads)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[TextPart] | None = None

    @property
    def plain(self) -> bool:
        """A text turn: a role of ``_TEXT_ROLES``, text content, nothing else (no name, tool calls, images)."""
        if self.role not in _TEXT_ROLES or self.model_extra or self.content is None:
            return False
        return isinstance(self.content, str) or all(p.type == "text" and p.text is not None and not p.model_extra
                                                    for p in self.content)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content or () if p.type == "text" and p.text is not None)

    def image_parts(self) -> list[int]:
        return [j for j, p in enumerate(self.content or ()) if not isinstance(self.content, str) and p.type == "image_url"]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(Generation):
    """OpenAI's request: what modelyard reads, with OpenAI's bounds; every other field is accepted and ignored."""

    model_config = ConfigDict(extra="allow", frozen=False)

    model: str = Field(min_length=1, max_length=128)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    metadata: dict[str, str] | None = None
    # modelyard's own (OpenAI clients send them with extra_body=...)
    agent_id: str | None = None
    user_role: str | None = None
    agent_type: str | None = None

    def generation(self) -> Generation | None:
        """The generation parameters the caller set (None: none; the backend's defaults apply)."""
        given = {name: value for name in GENERATION_FIELDS if (value := getattr(self, name)) is not None}
        return Generation.model_construct(**given) if given else None  # validated already, as this model


def resolve_model(model: str, pricing: PricingTable) -> tuple[ModelClass | None, str | None]:
    """``(requested_class, requested_model)`` for the request's ``model``; 404 for a name nobody serves."""
    if model == AUTO:
        return None, None
    if model in ModelClass._value2member_map_:
        return ModelClass(model), None
    if pricing.knows(model):
        return None, model
    raise OpenAIError(404, f"The model `{model}` does not exist or you do not have access to it.",
                      code="model_not_found", param="model", retry=False)


def model_ids(pricing: PricingTable) -> list[str]:
    return [AUTO, *(c.value for c in ModelClass), *pricing.models]


def model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": OWNER}


def _conversation(messages: list[Message]) -> tuple[str, list[ChatMessage], list[dict[str, Any]] | None]:
    """``(text, history, messages)``: text turns ending with the user's as text and history, else whole."""
    last = len(messages) - 1
    if all(m.plain for m in messages) and messages[-1].role == "user":
        history = [ChatMessage(role=_TEXT_ROLES[m.role], content=m.text()) for m in messages[:-1]]
        return messages[-1].text(), history, None
    for i, m in enumerate(messages):
        if m.role not in _MESSAGE_ROLES:
            raise bad_request(f"messages[{i}]: role {m.role!r} is not one of {', '.join(sorted(_MESSAGE_ROLES))}",
                              param=f"messages.{i}.role", code="invalid_value")
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise bad_request("messages: the conversation needs a user message", param=f"messages.{last}.role")
    text = messages[users[-1]].text().strip() or "(an image without text)"
    return text, [], [m.model_dump(exclude_unset=True) for m in messages]


def _check_images(messages: list[Message], model: str | None, pricing: PricingTable) -> None:
    """A pinned model that reads no images gets none (a routed query finds a model that does, or a 400 later)."""
    if model is None or pricing.reads_images(model) is not False:
        return
    for i, m in enumerate(messages):
        if parts := m.image_parts():
            raise bad_request(f"Invalid content type. image_url is only supported by certain models ({model} reads "
                              "no images).", param=f"messages[{i}].content[{parts[0]}].type", code="unsupported_content")


def to_submitted(body: ChatCompletionRequest, *, tenant_id: str, query_id: str, pricing: PricingTable,
                 stream_to: StreamTo | None = None) -> QuerySubmitted:
    """The query event for a chat request, or an ``OpenAIError`` (400/404) saying what cannot be served."""
    requested_class, requested_model = resolve_model(body.model, pricing)
    text, history, messages = _conversation(body.messages)
    _check_images(body.messages, requested_model, pricing)
    metadata = dict(body.metadata or {})
    if body.user and "user" not in metadata:
        metadata["user"] = body.user
    try:
        return QuerySubmitted(
            tenant_id=tenant_id,
            query_id=query_id,
            text=text,
            history=history,
            messages=messages,
            agent_id=body.agent_id or metadata.get("agent_id"),
            user_role=body.user_role or metadata.get("user_role"),
            agent_type=body.agent_type or metadata.get("agent_type"),
            requested_class=requested_class,
            requested_model=requested_model,
            metadata=metadata,
            generation=body.generation(),
            stream_to=stream_to if body.stream else None,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        param = {"text": f"messages.{len(body.messages) - 1}.content", "history": "messages"}.get(field.split(".")[0], field)
        raise bad_request(f"{param}: {err.get('msg')}", param=param) from None
