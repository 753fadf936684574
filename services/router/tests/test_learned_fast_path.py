"""The serving fast path (``Scorer.score`` inside ``LearnedRouter.route``) against the slow reference
(``RouterModel.estimate``: the whole feature dict, one weight lookup per feature) on both shipped models:
the same scores to 1e-9, the same class, and the movers the model's own weights name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from modelyard_events import ComplexityLevel, ModelClass, RoutingPreference
from modelyard_learn.blocks import label
from modelyard_learn.features import Query, pair_hash, stable_hash
from modelyard_router.complexity import load_complexity_model
from modelyard_router.learned import BUILTIN, LearnedRouter

DATA = Path(__file__).parent / "data"


def _rows() -> list[dict]:
    rows = [json.loads(line) for line in (DATA / "helpdesk_labelled.jsonl").read_text().splitlines() if line.strip()]
    rows += [json.loads(line) for line in (DATA / "mmlu_sample.jsonl").read_text().splitlines() if line.strip()]
    return rows


ROWS = _rows()
TENANTS = (None, "acme")


@pytest.fixture(scope="module", params=BUILTIN)
def learned(request) -> LearnedRouter:
    return LearnedRouter.load(request.param)


def _cases():
    model = load_complexity_model()
    for row in ROWS:
        history = int(row.get("history", 0))
        analysis = model.analyze(row["text"], user_role=row.get("user_role"), history_turns=history,
                                 agent_type=row.get("agent_type"))
        for tenant in TENANTS:
            query = Query(row["text"], user_role=row.get("user_role"), agent_type=row.get("agent_type"),
                          history_turns=history, factors=analysis.factors, tenant=tenant)
            yield row, analysis, query


def reference_movers(learned: LearnedRouter, query: Query, k: int = 3) -> list[tuple[str, float]]:
    """Every word occurrence, weighted bigram and named feature with its effect on the logit of P(small fails),
    from the small_ok head's weights and the featurizer's own feature lists; the k largest by |effect|."""
    featurizer, weights = learned.model.featurizer, learned.model.heads["small_ok"].weights
    words = featurizer.tokens(query.text)
    scale = 1.0 / math.sqrt(len(words)) if words else 0.0
    found: list[tuple[float, float, str]] = []
    for word in words:
        e = -sum(weights.get(i, 0.0) * v for i, v in featurizer.word_indices(word)) * scale
        found.append((abs(e), e, f"'{word}'"))
    if featurizer.bigrams:
        for a, b in zip(words, words[1:]):
            w = weights.get(pair_hash(featurizer.word_hash(a), featurizer.word_hash(b)) & featurizer.mask, 0.0)
            found.append((abs(w * scale), -w * scale, f"'{a} {b}'"))
    for name, v in featurizer.named(query).items():
        e = -weights.get(stable_hash(name) & featurizer.mask, 0.0) * v
        found.append((abs(e), e, label(name)))
    found = sorted((f for f in found if f[0]), reverse=True)[:k]
    return [(name, effect) for _, effect, name in found]


def test_fast_scores_equal_the_slow_reference_on_helpdesk_and_mmlu_texts(learned):
    worst = 0.0
    for _, analysis, query in _cases():
        fast = learned.scorer.score(query, analysis.tokens).estimate
        slow = learned.model.estimate(query)
        worst = max(worst, abs(fast.small_ok - slow.small_ok), abs(fast.large_ok - slow.large_ok))
    assert worst < 1e-9


def test_fast_path_takes_the_class_the_slow_estimate_gives_and_names_the_same_movers(learned):
    checked = 0
    for preference in RoutingPreference:
        threshold = learned.thresholds[preference]
        for row, analysis, query in _cases():
            chosen, score, reasons = learned.route(analysis, row["text"], row.get("user_role"), row.get("agent_type"),
                                                   query.history_turns, query.tenant, preference, "test")
            slow = learned.model.estimate(query)
            assert abs(score - slow.fail) <= 0.5e-4 + 1e-9  # the served score is rounded to 4 decimals
            if abs(slow.gain - threshold) < 1e-9:
                continue  # on the threshold itself the last bit decides: nothing to compare
            up = slow.gain >= threshold or analysis.incident
            expected = (ModelClass.LLM_PLUS if analysis.level is ComplexityLevel.CRITICAL else ModelClass.LLM) if up else ModelClass.SLM
            assert chosen is expected, row["text"]
            checked += 1
            movers = learned.scorer.score(query, analysis.tokens).movers
            reference = reference_movers(learned, query)
            assert [name for name, _ in movers] == [name for name, _ in reference], row["text"]
            assert all(abs(a - b) < 1e-9 for (_, a), (_, b) in zip(movers, reference, strict=True))
            assert any(reason.startswith("moved P(small fails) most") for reason in reasons) == bool(movers)
    assert checked > 3 * len(ROWS)  # nearly every case is compared, for every preference
