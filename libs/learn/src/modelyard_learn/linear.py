"""A sparse logistic regression trained by FTRL-Proximal: one class for batch training (epochs over
a labelled set) and online learning (one update per revealed outcome).

FTRL-Proximal (McMahan et al., "Ad click prediction: a view from the trenches", KDD 2013) keeps two
numbers per touched coordinate (``z``, ``n``) and derives the weight from them; the L1 term keeps
most weights exactly zero, which keeps the model file small. Weights are kept materialised in
``weights`` so scoring is one dict lookup per feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def sigmoid(margin: float) -> float:
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    e = math.exp(margin)
    return e / (1.0 + e)


class FtrlLogistic:
    """P(label) = sigmoid(w . x). ``alpha``/``beta``: per-coordinate learning rate; ``l1``/``l2``: penalties."""

    __slots__ = ("alpha", "beta", "l1", "l2", "weights", "z", "n", "updates")

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, l1: float = 0.5, l2: float = 1.0) -> None:
        self.alpha, self.beta, self.l1, self.l2 = alpha, beta, l1, l2
        self.weights: dict[int, float] = {}
        self.z: dict[int, float] = {}
        self.n: dict[int, float] = {}
        self.updates = 0

    def margin(self, features: Mapping[int, float]) -> float:
        get = self.weights.get
        return sum([get(i, 0.0) * v for i, v in features.items()])

    def predict(self, features: Mapping[int, float]) -> float:
        return sigmoid(self.margin(features))

    def update(self, features: Mapping[int, float], label: bool, weight: float = 1.0) -> float:
        """One FTRL step on (features, label); returns the prediction made before the step."""
        p = self.predict(features)
        g_scale = (p - (1.0 if label else 0.0)) * weight
        if g_scale == 0.0:
            return p
        alpha, beta, l1, l2 = self.alpha, self.beta, self.l1, self.l2
        z, n, weights = self.z, self.n, self.weights
        for i, x in features.items():
            g = g_scale * x
            n_old = n.get(i, 0.0)
            n_new = n_old + g * g
            sigma = (math.sqrt(n_new) - math.sqrt(n_old)) / alpha
            z_new = z.get(i, 0.0) + g - sigma * weights.get(i, 0.0)
            z[i], n[i] = z_new, n_new
            if abs(z_new) <= l1:
                weights.pop(i, None)
            else:
                weights[i] = -(z_new - math.copysign(l1, z_new)) / ((beta + math.sqrt(n_new)) / alpha + l2)
        self.updates += 1
        return p

    # --- state -------------------------------------------------------------------------------------

    def hyper(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "l1": self.l1, "l2": self.l2}

    def state(self, with_optimizer: bool) -> dict:
        """Weights (and, to keep learning after a restart, the optimiser's z and n) as plain dicts."""
        out = {"hyper": self.hyper(), "updates": self.updates, "weights": self.weights}
        if with_optimizer:
            out["z"], out["n"] = self.z, self.n
        return out

    @classmethod
    def from_state(cls, state: Mapping) -> FtrlLogistic:
        head = cls(**state["hyper"])
        head.updates = int(state.get("updates", 0))
        head.weights = {int(k): float(v) for k, v in state["weights"].items()}
        head.z = {int(k): float(v) for k, v in state.get("z", {}).items()}
        head.n = {int(k): float(v) for k, v in state.get("n", {}).items()}
        if head.weights and not head.z:
            head.settle(0.0)
        return head

    def settle(self, prior_n: float) -> None:
        """Rebuild an optimiser state that reproduces the weights (a serving-only file has none), so learning can
        continue from them. ``prior_n`` is the squared gradient each weighted coordinate is taken to have seen
        already: 0 gives it a fresh learning rate; more makes trained weights move slower than new ones."""
        denom = (self.beta + math.sqrt(prior_n)) / self.alpha + self.l2
        self.n = {i: prior_n for i in self.weights}
        self.z = {i: -(w * denom) - math.copysign(self.l1, w) for i, w in self.weights.items()}
