"""The fast scorer equals the model; metrics on hand-checked cases."""

import random

import pytest

from modelyard_learn import metrics
from modelyard_learn.features import FeatureSet, Query
from modelyard_learn.model import Example, RouterModel
from modelyard_learn.scorer import Scorer


def trained(fs):
    rng = random.Random(1)
    words = ["derive", "prove", "status", "invoice", "outage", "design", "hello", "refund"]
    ex = []
    for i in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        hard = "derive" in text or "design" in text
        ex.append(
            Example(Query(text, user_role=rng.choice([None, "cto"]), factors={"length": len(text) / 50}), not hard, rng.random() < 0.8)
        )
    return RouterModel(fs, hyper={"alpha": 0.3, "l1": 0.01}).fit(ex, epochs=2)


@pytest.mark.parametrize("fs", [FeatureSet.build(), FeatureSet.build(chars=None, ngrams=1), FeatureSet.build(domain="helpdesk", tenant=True)])
def test_scorer_matches_the_model_on_seen_and_unseen_words(fs):
    model = trained(fs)
    scorer = Scorer(model, cache_size=5)  # tiny cache: eviction is exercised
    for text in ["derive prove design", "hello refund status invoice", "completely new words here", "Which is NOT true?\nA. 1\nB. 2", ""]:
        q = Query(text, user_role="cto", factors={"length": 0.4}, tenant="t1")
        a, b = model.estimate(q), scorer.score(q).estimate
        assert abs(a.small_ok - b.small_ok) < 1e-9 and abs(a.large_ok - b.large_ok) < 1e-9


def test_scorer_names_what_moved_the_failure_score_most_with_the_models_own_contributions():
    model = trained(FeatureSet.build(tenant=True))
    query = Query("hello derive refund", factors={"length": 0.4})
    scored = Scorer(model).score(query)
    assert scored.movers[0][0] == "'derive'" and scored.movers[0][1] > 0  # it raised P(small fails)
    assert len(scored.movers) == 3 and scored.tenant_shift == 0.0
    # The effect is the model's own: the word's features' weights on small_ok, scaled by 1/sqrt(3 words), negated.
    weights = model.heads["small_ok"].weights
    own = sum(weights.get(i, 0.0) * v for i, v in model.featurizer.word_indices("derive")) / 3 ** 0.5
    assert abs(scored.movers[0][1] + own) < 1e-9


def test_apgr_constant_is_half_perfect_is_high_reversed_is_low():
    small = [False, False, True, True, True, False]
    large = [True, True, True, False, True, False]
    gain = [int(big) - int(little) for little, big in zip(small, large, strict=True)]
    assert metrics.apgr([0] * 6, small, large) == pytest.approx(0.5)
    best = metrics.apgr(gain, small, large)
    worst = metrics.apgr([-g for g in gain], small, large)
    assert best > 0.8 and worst < 0.2 and best + worst == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.apgr([1, 2], [True, True], [False, False])


def test_auroc_and_savings():
    assert metrics.auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert metrics.auroc([0.5, 0.5], [True, False]) == 0.5
    # 4 queries, large right on all, small right on the last two: sending the first two up reaches 100%.
    sav = metrics.savings_at_quality([4, 3, 2, 1], [False, False, True, True], [True] * 4, targets=(0.5, 1.0))
    assert sav == {"0.50": pytest.approx(1 - 4 / 60, abs=1e-4), "1.00": pytest.approx(1 - (2 * 15 + 2) / 60, abs=1e-4)}


def test_word_and_bigram_caches_stay_bounded_and_scores_stay_exact_under_many_new_words():
    model = trained(FeatureSet.build())
    scorer = Scorer(model, cache_size=20)  # at most 40 cached bigram weights
    rng = random.Random(3)
    vocabulary = ["derive", "prove", "status", "invoice", "outage", "design", "hello", "refund"] + [f"w{i}" for i in range(300)]
    for _ in range(200):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 12)))
        q = Query(text, factors={"length": 0.2})
        a, b = model.estimate(q), scorer.score(q).estimate
        assert abs(a.small_ok - b.small_ok) < 1e-9 and abs(a.large_ok - b.large_ok) < 1e-9
        cached_pairs = sum(len(record[-1]) for record in scorer._words.values())
        assert len(scorer._words) <= 20 + 12 and cached_pairs <= 2 * 20 + 11  # one query's words/pairs beyond the limit
