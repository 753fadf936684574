"""Hostile-input limits of a chat request beyond what its schema says: how many messages and how
long each one's text may be (``MODELYARD_INGRESS_MAX_MESSAGES``, ``MODELYARD_INGRESS_MAX_MESSAGE_CHARS``).
A request over either is answered 422 naming the field (``messages``, ``messages.<i>.content``)
before anything is submitted. The body's size is limited before it is read (``modelyard_core.limits``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import OpenAIError
from .protocol import ChatCompletionRequest


def too_large(message: str, param: str) -> OpenAIError:
    return OpenAIError(422, message, code="limit_exceeded", param=param, retry=False)


@dataclass(frozen=True)
class MessageLimits:
    max_messages: int
    max_message_chars: int

    def check(self, body: ChatCompletionRequest) -> None:
        if len(body.messages) > self.max_messages:
            raise too_large(f"messages: {len(body.messages)} messages, at most {self.max_messages} are accepted", "messages")
        for i, message in enumerate(body.messages):
            parts = [message.content] if isinstance(message.content, str) else [p.text or "" for p in message.content or ()]
            if (chars := sum(len(p) for p in parts)) > self.max_message_chars:
                raise too_large(f"messages.{i}.content: {chars} characters, at most {self.max_message_chars} are accepted",
                                f"messages.{i}.content")
