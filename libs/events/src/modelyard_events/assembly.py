"""Folding streamed deltas back into whole choices, the way OpenAI's clients do.

The inference worker folds a backend's stream into the answer it judges and meters; the ingress folds
what it has already sent to a caller, to complete the stream from the query's outcome. One fold, so
both agree on what a stream said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .generation import Choice, ChoiceDelta


@dataclass
class _ToolCall:
    id: str | None = None
    type: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type or "function",
                "function": {"name": self.name, "arguments": "".join(self.arguments)}}


@dataclass
class ChoiceBuilder:
    """One choice being streamed."""

    index: int
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    function_name: str = ""
    function_arguments: list[str] | None = None
    finish_reason: str | None = None
    logprobs: list[Any] | None = None

    def add(self, d: ChoiceDelta) -> None:
        if d.content:
            self.content.append(d.content)
        if d.refusal:
            self.refusal.append(d.refusal)
        for entry in d.tool_calls or ():
            call = self.tool_calls.setdefault(int(entry.get("index", len(self.tool_calls))), _ToolCall())
            call.id = entry.get("id") or call.id
            call.type = entry.get("type") or call.type
            function = entry.get("function") or {}
            call.name += function.get("name") or ""
            if function.get("arguments"):
                call.arguments.append(function["arguments"])
        if d.function_call is not None:
            self.function_name += d.function_call.get("name") or ""
            self.function_arguments = self.function_arguments or []
            if d.function_call.get("arguments"):
                self.function_arguments.append(d.function_call["arguments"])
        if d.finish_reason is not None:
            self.finish_reason = d.finish_reason
        if d.logprobs and isinstance(d.logprobs.get("content"), list):
            self.logprobs = [*(self.logprobs or ()), *d.logprobs["content"]]

    @property
    def text(self) -> str:
        return "".join(self.content)

    def choice(self) -> Choice:
        calls = [self.tool_calls[i].as_json() for i in sorted(self.tool_calls)] or None
        function_call = ({"name": self.function_name, "arguments": "".join(self.function_arguments)}
                         if self.function_arguments is not None else None)
        return Choice(
            index=self.index,
            content="".join(self.content) if self.content or not (calls or function_call or self.refusal) else None,
            refusal="".join(self.refusal) or None,
            tool_calls=calls,
            function_call=function_call,
            finish_reason=self.finish_reason,
            logprobs={"content": self.logprobs} if self.logprobs is not None else None,
        )


class Assembly:
    """Every choice of one stream, folded from its deltas in the order they came."""

    def __init__(self) -> None:
        self.builders: dict[int, ChoiceBuilder] = {}

    def builder(self, index: int) -> ChoiceBuilder:
        b = self.builders.get(index)
        if b is None:
            b = self.builders[index] = ChoiceBuilder(index)
        return b

    def add(self, delta: ChoiceDelta) -> None:
        self.builder(delta.index).add(delta)

    def choices(self) -> list[Choice]:
        return [self.builders[i].choice() for i in sorted(self.builders)]
