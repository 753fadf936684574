"""Model prices (USD per 1M input / output tokens) and capabilities from a data file, and the cost of a call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from modelyard_events import ModelClass


@dataclass(frozen=True, slots=True)
class Price:
    input_per_m: float
    output_per_m: float
    #: the model reads image content parts
    vision: bool = False

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1_000_000


class PricingTable:
    def __init__(self, data: dict) -> None:
        self.version: str = data["version"]
        self.baseline_model: str = data["baseline_llm_model"]
        self.class_defaults = {ModelClass(k): v for k, v in data["class_defaults"].items()}
        self.multipliers = {ModelClass(k): float(v) for k, v in data["class_cost_multipliers"].items()}
        self._prices = {name: Price(p["input"], p["output"], bool(p.get("vision", False)))
                        for name, p in data["models"].items()}
        for model in (self.baseline_model, *self.class_defaults.values()):
            if model not in self._prices:
                raise ValueError(f"pricing table {self.version}: no price for default model {model!r}")

    def price(self, model: str) -> Price:
        try:
            return self._prices[model]
        except KeyError:
            raise KeyError(f"model {model!r} has no price in pricing table {self.version}") from None

    def knows(self, model: str) -> bool:
        return model in self._prices

    def reads_images(self, model: str) -> bool | None:
        """Whether ``model`` accepts image content parts; None for a model the table does not know."""
        price = self._prices.get(model)
        return None if price is None else price.vision

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        return self.price(model).cost(input_tokens, output_tokens)

    def baseline_cost(self, input_tokens: int, output_tokens: int) -> float:
        """What the same tokens cost on the standard LLM: the counterfactual savings are measured against."""
        return self.cost(self.baseline_model, input_tokens, output_tokens)

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)


@cache
def load_pricing(path: str | None = None) -> PricingTable:
    if path:
        return PricingTable(json.loads(Path(path).read_text()))
    text = resources.files("modelyard_core").joinpath("data/pricing.json").read_text()
    return PricingTable(json.loads(text))
