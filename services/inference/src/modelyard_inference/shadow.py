"""Shadow evaluation in the inference pools (issue 16): how good were the small model's accepted answers?

The router samples a tenant's ``shadow_share`` of the queries it sends to the small model (``ShadowPlan``
on the routed event). When the small model's answer is accepted, the SLM worker delivers the outcome as
always and, in the same batch, sends a *shadow copy* to the large model's pool (``shadow_copy``): the
caller waits for nothing more. The LLM worker answers the copy, compares the two answers (``compare``),
and publishes a ``ShadowCompared`` on ``queries.shadows`` (the router's learner reads it) and a usage
record marked ``shadow`` (metering counts it apart from the tenant's own calls: not billed). The copy's
answer goes to nobody: no outcome, no escalation.

How two answers are compared:
- *exact* for short or structured answers: both are JSON, or both are a few words, or both state a final
  answer ("The answer is 55.", "#### 55", "Answer: B"): equal after normalising;
- *similarity* otherwise: the overlap (Jaccard) of their content words against ``threshold``
  (``MODELYARD_SHADOW_SIMILARITY``, 0.5). A crude judge of long free text, chosen because it costs no
  model call; its threshold is configuration, and a judge-model comparison can replace ``compare``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from modelyard_core.bus import Delivery, Outgoing
from modelyard_core.settings import Topics
from modelyard_events import Answer, QueryRouted, RouteContext, ShadowCompared, ShadowOf, UsageRecorded, derived_id

from . import metrics

_FINAL = re.compile(r"(?:####|answer is|answer:)\s*\(?([-+]?\$?[0-9][0-9,]*(?:\.[0-9]+)?|[A-Ja-j]\b)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_SHORT_WORDS = 8


@dataclass(frozen=True, slots=True)
class Comparison:
    agreed: bool
    method: str  # "exact" or "similarity"
    similarity: float | None


def shadow_copy(r: QueryRouted, answer: Answer) -> QueryRouted:
    """The copy of an SLM-answered query for the large model's pool (``r.shadow`` must be set)."""
    plan = r.shadow
    assert plan is not None
    decision = r.decision.model_copy(update={"model_class": plan.model_class, "model": plan.model})
    return r.model_copy(update={
        # the copy's tokens go to nobody: never onto the caller's stream
        "request": r.request.model_copy(update={"stream_to": None}),
        "event_id": derived_id(r.query_id, "shadow"), "decision": decision, "cascade": [], "can_escalate": False,
        "best_answer": None, "shadow": None, "shadow_of": ShadowOf(answer=answer.text, model=answer.model, share=plan.share),
    })


def shadow_call_id(query_id: str) -> str:
    """The usage id of a shadow call: one per query, apart from its cascade's calls."""
    return derived_id(query_id, "shadow-call")


def compared_events(d: Delivery[QueryRouted], usage: UsageRecorded, large_answer: str | None, topics: Topics,
                    threshold: float) -> list[Outgoing]:
    """What the large model's pool sends for a shadow copy: its call's usage marked shadow (with whether the
    answers agreed) and, when the call answered, the comparison on ``queries.shadows``."""
    r = d.event
    assert r.shadow_of is not None
    compared = compare(r.shadow_of.answer, large_answer, threshold) if large_answer is not None else None
    usage = usage.model_copy(update={"event_id": shadow_call_id(r.query_id), "shadow": True,
                                     "shadow_agreed": compared.agreed if compared else None})
    out = [Outgoing(topics.name("usage"), usage, cause=d)]
    if compared is not None:
        metrics.SHADOW_COMPARISONS.labels("agreed" if compared.agreed else "disagreed").inc()
        out.append(Outgoing(topics.name("shadows"), ShadowCompared(
            event_id=derived_id(r.query_id, "shadow-compared"), tenant_id=r.tenant_id, query_id=r.query_id,
            route=RouteContext.of(r.request, r.decision), small_model=r.shadow_of.model, large_model=r.decision.model,
            agreed=compared.agreed, method=compared.method, similarity=compared.similarity, share=r.shadow_of.share),
            cause=d))
    return out


def final_answer(text: str) -> str | None:
    """The final answer an answer states ("The answer is 55.", "#### 55", "Answer: B"), normalised; else None."""
    stated = _FINAL.findall(text)
    return _normal_number(stated[-1]) if stated else None


def _normal_number(value: str) -> str:
    value = value.strip().lstrip("$").replace(",", "")
    if len(value) == 1 and value.isalpha():
        return value.upper()
    try:
        return repr(float(value))
    except ValueError:
        return value.lower()


def _json(text: str):
    text = text.strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def compare(small: str, large: str, threshold: float = 0.5) -> Comparison:
    small_json, large_json = _json(small), _json(large)
    if small_json is not None and large_json is not None:
        return Comparison(small_json == large_json, "exact", None)
    small_words, large_words = _words(small), _words(large)
    if len(small_words) <= _SHORT_WORDS and len(large_words) <= _SHORT_WORDS:
        return Comparison(small_words == large_words, "exact", None)
    small_final, large_final = final_answer(small), final_answer(large)
    if small_final is not None and large_final is not None:
        return Comparison(small_final == large_final, "exact", None)
    a = {w for w in small_words if len(w) > 2}
    b = {w for w in large_words if len(w) > 2}
    similarity = len(a & b) / len(a | b) if a | b else 1.0
    return Comparison(similarity >= threshold, "similarity", round(similarity, 4))
