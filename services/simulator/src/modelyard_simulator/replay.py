"""Replay mode: recorded answers from a JSON-lines file ``{"prompt": ..., "responses": {"<model>": "<text>"}}``.

A request matches a record when its last user message equals the record's prompt (surrounding white
space ignored). A later record for the same prompt adds to, and overrides, earlier ones.
"""

from __future__ import annotations

from pathlib import Path

import orjson


class ReplayBook:
    def __init__(self, records: dict[str, dict[str, str]]) -> None:
        self._records = records

    @classmethod
    def load(cls, path: Path) -> ReplayBook:
        records: dict[str, dict[str, str]] = {}
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
                records.setdefault(prompt.strip(), {}).update(responses)
        return cls(records)

    def lookup(self, prompt: str, model: str) -> str | None:
        return self._records.get(prompt.strip(), {}).get(model)

    def __len__(self) -> int:
        return len(self._records)
