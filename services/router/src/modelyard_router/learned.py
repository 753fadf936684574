"""A learned router model in service: the model file, its fast scorer, its thresholds, and the reasons.

``decide`` calls ``LearnedRouter.route`` when a model is configured (``MODELYARD_ROUTER__MODEL``, or one
published on ``router.models``): the query's words and the keyword analysis's factors go through the
model's scorer (``modelyard_learn.scorer``); the served ``score`` is P(small model fails); the class is
up (``llm``, or ``llm_plus`` when the keyword level is critical) when the expected gain of the large model
reaches the threshold the model file sets for the tenant's preference, or when the keyword analysis
reports an incident. Pins, floors and ceilings apply afterwards, as without a model.

Two model files ship with the router (``data/models``, trained by ``make router-models``):
``helpdesk`` (support traffic; the recommended default) and ``mmlu`` (knowledge questions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from modelyard_events import ComplexityLevel, ModelClass, RoutingPreference
from modelyard_learn import modelfile, routing
from modelyard_learn.features import QueryView
from modelyard_learn.scorer import Scorer

from .complexity import Analysis

#: The model files shipped in ``modelyard_router/data/models``, by the name ``MODELYARD_ROUTER__MODEL`` accepts.
BUILTIN = ("helpdesk", "mmlu")


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("modelyard_router").joinpath(f"data/models/{name}.json")))


def resolve(spec: str) -> Path:
    """A model given by name (``helpdesk``, ``mmlu``) or by path."""
    return builtin_path(spec) if spec in BUILTIN else Path(spec)


@dataclass
class LearnedRouter:
    """One loaded model file. ``name``: where it came from (a builtin name, a path, a published name)."""

    doc: dict[str, Any]
    name: str
    model_id: str = ""  # the model file's digest (computed when not given)
    #: Outcomes learned online per tenant since the model file (a learner's snapshot says), for reasons.
    tenant_outcomes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model = modelfile.from_json(self.doc)
        self.scorer = Scorer(self.model)
        self.model_id = self.model_id or modelfile.digest(self.doc)
        self.label = f"{self.name}@{self.model_id[:12]}"
        online = self.doc.get("online") or {}
        self.tenant_outcomes = {str(k): int(v) for k, v in (online.get("tenant_outcomes") or {}).items()}
        self.thresholds = {p: routing.threshold_for(self.doc.get("routing") or {}, p.value) for p in RoutingPreference}
        # The parts of the first reason that depend only on the model and the preference, formatted once.
        self._prefix = f"learned router {self.label}: P(small fails) "
        self._threshold_text = {p: f"{t:.2f} ({p.value}, " for p, t in self.thresholds.items()}
        self._tails: dict[tuple[bool, RoutingPreference, str, ModelClass], str] = {}

    def _tail(self, up: bool, preference: RoutingPreference, source: str, chosen: ModelClass) -> str:
        if len(self._tails) >= 1024:  # preference sources are a handful (tenant policy, presets): stay bounded anyway
            self._tails.clear()
        tail = self._tails[(up, preference, source, chosen)] = (
            f" {'>=' if up else '<'} {self._threshold_text[preference]}{source}) -> {_CLASS_TEXT[chosen]}")
        return tail

    @classmethod
    def load(cls, spec: str) -> LearnedRouter:
        path = resolve(spec)
        _, doc = modelfile.load(path)
        return cls(doc, spec)

    def route(self, analysis: Analysis, text: str, user_role: str | None, agent_type: str | None, history_turns: int,
              tenant_id: str | None, preference: RoutingPreference, preference_source: str) -> tuple[ModelClass, float, list[str]]:
        """(class before pins, floor and ceiling; P(small fails); the reasons of the learned part)."""
        # QueryView(...) without the named tuple's Python-level __new__ frame: same fields, same order.
        query = _new(QueryView, (text, user_role, agent_type, history_turns, analysis.factors, tenant_id))
        scored = self.scorer.score(query, analysis.tokens)
        small_ok, large_ok = scored.estimate
        fail, gain = 1.0 - small_ok, large_ok - small_ok  # Estimate.fail and .gain, without two property calls each
        up = gain >= self.thresholds[preference]
        if up or analysis.incident:
            chosen = _LLM_PLUS if analysis.level is _CRITICAL else _LLM
        else:
            chosen = _SLM
        # %-formatting: a float's "%+.2f" costs less than its f-string twin (no format-spec parsing), same text. The
        # reason's end depends on the policy and the outcome only: formatted once per combination.
        tail = self._tails.get((up, preference, preference_source, chosen))
        if tail is None:
            tail = self._tail(up, preference, preference_source, chosen)
        reasons = ["%s%.2f, expected gain of the large model %+.2f%s" % (self._prefix, fail, gain, tail)]
        if analysis.incident and not up:
            reasons.append("incident: a failure with a business-wide scope must reach the LLM")
        movers = scored.movers
        if len(movers) == 3:  # the usual case, as one formatting (a join over a comprehension costs twice as much)
            (n0, e0), (n1, e1), (n2, e2) = movers
            reasons.append("moved P(small fails) most (logit): %s %+.2f, %s %+.2f, %s %+.2f" % (n0, e0, n1, e1, n2, e2))
        elif movers:
            moved = ", ".join([f"{name} {effect:+.2f}" for name, effect in movers])
            reasons.append(f"moved P(small fails) most (logit): {moved}")
        if scored.tenant_shift:
            seen = self.tenant_outcomes.get(tenant_id or "", 0)
            reasons.append(f"learning moved it: this tenant's correction {scored.tenant_shift:+.2f} on the logit of "
                           f"P(small fails), learned online from {seen} of its outcomes")
        return chosen, round(fail, 4), reasons


# Looked up once: an enum member's attribute and ``.value`` cost a descriptor call each on the hot path.
_SLM, _LLM, _LLM_PLUS, _CRITICAL = ModelClass.SLM, ModelClass.LLM, ModelClass.LLM_PLUS, ComplexityLevel.CRITICAL
_new = tuple.__new__
_CLASS_TEXT = {c: c.value for c in ModelClass}
