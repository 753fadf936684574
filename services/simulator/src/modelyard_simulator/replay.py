"""Replay mode: recorded answers from a JSON-lines file ``{"prompt": ..., "responses": {"<model>": "<text>"}}``.

A request matches a record when its last user message equals the record's prompt (surrounding white
space ignored). A later record for the same prompt adds to, and overrides, earlier ones.

A record may also name a ``"system"`` prompt: it then matches only requests whose first system message
equals it, and wins over a record of the same prompt without one. That lets a test prove a system
prompt reached the model (an agent's, say) by the answer it gets back.
"""

from __future__ import annotations

from pathlib import Path

import orjson


Key = tuple[str | None, str]  # (system prompt or None, prompt), both stripped


class ReplayBook:
    def __init__(self, records: dict[Key, dict[str, str]]) -> None:
        self._records = records

    @classmethod
    def load(cls, path: Path) -> ReplayBook:
        records: dict[Key, dict[str, str]] = {}
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
                prompt = record.get("prompt") if isinstance(record, dict) else None
                responses = record.get("responses") if isinstance(record, dict) else None
                if not isinstance(prompt, str) or not isinstance(responses, dict):
                    raise ValueError(f'{path}:{number}: expected {{"prompt": str, "responses": {{model: text}}}}')
                if not all(isinstance(m, str) and isinstance(t, str) for m, t in responses.items()):
                    raise ValueError(f"{path}:{number}: every response must map a model name to a text")
                system = record.get("system")
                if system is not None and not isinstance(system, str):
                    raise ValueError(f"{path}:{number}: 'system' must be a string")
                key = (system.strip() if system is not None else None, prompt.strip())
                records.setdefault(key, {}).update(responses)
        return cls(records)

    def lookup(self, prompt: str, model: str, system: str | None = None) -> str | None:
        prompt = prompt.strip()
        if system is not None and (text := self._records.get((system.strip(), prompt), {}).get(model)) is not None:
            return text
        return self._records.get((None, prompt), {}).get(model)

    def __len__(self) -> int:
        return len(self._records)
