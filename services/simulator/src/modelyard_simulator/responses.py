"""A completion as OpenAI sends it: the ``chat.completion`` document, or server-sent events.

Streaming follows OpenAI's chunks: per choice a role chunk, content chunks of ``stream_chunk_tokens``
tokens (tool calls: a chunk with the call's index, id and function name, then argument fragments),
a finish chunk, then a usage chunk with empty ``choices`` when ``stream_options.include_usage`` is set
(every other chunk then carries ``"usage": null``), then ``data: [DONE]``. With ``stream_tokens_per_s``
the chunks are paced: a choice's token i leaves ``i / rate`` seconds after the first; a stream that falls
behind sends the tokens that are due together. Without a rate everything is sent in one write. The
chunks are built from byte templates: the 0 ms benchmarks stream at the simulator's maximum rate.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from modelyard_simulator.choices import Choice, Completion
from modelyard_simulator.generate import logprob_entries
from modelyard_simulator.request import ChatRequest

FINGERPRINT = "fp_modelyard_simulator"


_IDS = random.Random()  # seeded from the OS once; uuid4 would read os.urandom on every answer


def completion_id() -> str:
    return f"chatcmpl-{_IDS.getrandbits(128):032x}"


def _logprobs(chat: ChatRequest, choice: Choice, start: int = 0, end: int | None = None) -> dict[str, Any] | None:
    if choice.token_probs is None:
        return None
    end = len(choice.tokens) if end is None else end
    return {
        "content": logprob_entries(choice.tokens[start:end], choice.token_probs[start:end], chat.top_logprobs),
        "refusal": None,
    }


def _message(chat: ChatRequest, choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": None}
    if choice.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in choice.tool_calls]
        if chat.tools is not None and chat.tools.legacy:
            message["function_call"] = calls[0]
        else:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": f} for c, f in zip(choice.tool_calls, calls, strict=True)
            ]
    return message


def completion_document(chat: ChatRequest, completion: Completion, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": choice.index,
                "message": _message(chat, choice),
                "logprobs": _logprobs(chat, choice),
                "finish_reason": choice.finish_reason,
            }
            for choice in completion.choices
        ],
        "usage": usage,
    }


def units(choice: Choice) -> int:
    """Stream units of a choice: its tokens, or per tool call a header and its argument tokens."""
    if choice.tool_calls:
        return sum(1 + len(c.tokens) for c in choice.tool_calls)
    return len(choice.tokens)


class _ChunkWriter:
    """Byte templates of one stream's chunks; a chunk is a few concatenations, not a dict dump."""

    def __init__(self, chat: ChatRequest) -> None:
        self.chat = chat
        head = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": chat.model, "system_fingerprint": FINGERPRINT}
        self.head = b"data: " + orjson.dumps(head)[:-1] + b',"choices":[{"index":'
        self.tail = b'}],"usage":null}\n\n' if chat.include_usage else b"}]}\n\n"
        self.plain_tail = b'},"logprobs":null,"finish_reason":null' + self.tail
        self.legacy = chat.tools is not None and chat.tools.legacy

    def chunk(
        self, index: int, delta: dict[str, Any] | bytes, logprobs: Any = None, finish: str | None = None
    ) -> bytes:
        delta_bytes = delta if isinstance(delta, bytes) else orjson.dumps(delta)
        return b"".join((
            self.head, str(index).encode(), b',"delta":', delta_bytes,
            b',"logprobs":', orjson.dumps(logprobs), b',"finish_reason":', orjson.dumps(finish), self.tail,
        ))

    def role(self, choice: Choice) -> bytes:
        content = "" if choice.content is not None else None
        return self.chunk(choice.index, {"role": "assistant", "content": content, "refusal": None})

    def content(self, choice: Choice, start: int, end: int) -> bytes:
        end = min(end, units(choice))
        if start >= end:
            return b""
        if choice.tool_calls:
            return self._tool_calls(choice, start, end)
        text = orjson.dumps("".join(choice.tokens[start:end]))
        if choice.token_probs is not None:
            return self.chunk(choice.index, b'{"content":' + text + b"}", _logprobs(self.chat, choice, start, end))
        # the common case, built from two fixed pieces: the 0 ms benchmarks stream this at full speed
        return b"%s%d%s%s%s" % (self.head, choice.index, b',"delta":{"content":', text, self.plain_tail)

    def all_content(self, choice: Choice, size: int) -> list[bytes]:
        """Every content chunk of a choice, ``size`` units each."""
        if choice.tool_calls or choice.token_probs is not None:
            return [self.content(choice, start, start + size) for start in range(0, units(choice), size)]
        # plain text: the 0 ms benchmarks stream this at full speed, so no per-chunk call
        prefix = b"%s%d%s" % (self.head, choice.index, b',"delta":{"content":')
        tail, dumps, tokens = self.plain_tail, orjson.dumps, choice.tokens
        if size == 1:
            return [prefix + dumps(token) + tail for token in tokens]
        return [prefix + dumps("".join(tokens[i : i + size])) + tail for i in range(0, len(tokens), size)]

    def _tool_calls(self, choice: Choice, start: int, end: int) -> bytes:
        out, offset = [], 0
        for k, call in enumerate(choice.tool_calls):
            size = 1 + len(call.tokens)
            lo, hi = max(start, offset), min(end, offset + size)
            if lo < hi:
                fragment = call.tokens[max(0, lo - offset - 1) : hi - offset - 1]  # unit 0 is the header
                function: dict[str, Any] = {"arguments": "".join(fragment)}
                if lo == offset:
                    function = {"name": call.name, **function}
                if self.legacy:
                    out.append(self.chunk(choice.index, {"function_call": function}))
                else:
                    entry: dict[str, Any] = {"index": k, "function": function}
                    if lo == offset:
                        entry = {"index": k, "id": call.id, "type": "function", "function": function}
                    out.append(self.chunk(choice.index, {"tool_calls": [entry]}))
            offset += size
        return b"".join(out)

    def finishes(self, choices: list[Choice]) -> bytes:
        return b"".join(self.chunk(c.index, b"{}", finish=c.finish_reason) for c in choices)

    def ending(self, usage: dict[str, int]) -> bytes:
        if not self.chat.include_usage:
            return b"data: [DONE]\n\n"
        head = self.head.split(b',"choices"')[0]
        return head + b',"choices":[],"usage":' + orjson.dumps(usage) + b"}\n\ndata: [DONE]\n\n"


async def sse(
    chat: ChatRequest, completion: Completion, usage: dict[str, int], tokens_per_s: float, chunk_tokens: int
) -> AsyncIterator[bytes]:
    """The completion as server-sent events, paced at ``tokens_per_s`` per choice (0: no pacing). Each
    choice's finish chunk follows its last token; the usage chunk and ``[DONE]`` come after all of them."""
    writer = _ChunkWriter(chat)
    choices = completion.choices
    lengths = [units(c) for c in choices]
    total = max(lengths)
    if tokens_per_s <= 0 or total == 0:
        parts = [writer.role(c) for c in choices]
        for step in itertools.zip_longest(*(writer.all_content(c, chunk_tokens) for c in choices), fillvalue=b""):
            parts += step
        yield b"".join(parts) + writer.finishes(choices) + writer.ending(usage)
        return
    loop = asyncio.get_running_loop()
    yield b"".join(writer.role(c) for c in choices)
    started, sent = loop.time(), 0
    while sent < total:
        # the chunk leaves when its last token is generated; tokens that are overdue go along
        target = min(sent + chunk_tokens, total)
        wake = started + (target - 1) / tokens_per_s
        if (wait := wake - loop.time()) > 0:
            await asyncio.sleep(wait)
        due = min(total, max(target, int((loop.time() - started) * tokens_per_s) + 1))
        done = [c for c, length in zip(choices, lengths, strict=True) if sent < length <= due or length == sent == 0]
        yield b"".join(writer.content(c, sent, due) for c in choices) + writer.finishes(done)
        sent = due
    yield writer.ending(usage)


def generation_seconds(completion: Completion, tokens_per_s: float) -> float:
    """How long after the first token the last one is generated (the choices run in parallel)."""
    if tokens_per_s <= 0:
        return 0.0
    return max(0, max(units(c) for c in completion.choices) - 1) / tokens_per_s
