"""FTRL heads, the two-head model, batch fit and the model file."""

import random

import pytest

from modelyard_learn import modelfile
from modelyard_learn.features import FeatureSet, Query
from modelyard_learn.linear import FtrlLogistic
from modelyard_learn.model import Example, RouterModel


def toy(n=400, seed=0):
    """'hard' queries: the small model fails and the large one rescues them; 'easy' ones both answer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hard = rng.random() < 0.4
        word = rng.choice(["derive", "prove", "integral"] if hard else ["status", "invoice", "hours"])
        out.append(Example(Query(f"please {word} item {i % 7}"), slm_ok=not hard, llm_ok=True if hard else rng.random() < 0.9, group=word))
    return out


def test_ftrl_learns_a_separable_problem_and_l1_keeps_unused_weights_at_zero():
    head = FtrlLogistic(alpha=0.5, l1=0.5, l2=0.1)
    for _ in range(50):
        head.update({1: 1.0, 99: 0.01}, True)
        head.update({2: 1.0, 99: 0.01}, False)
    assert head.predict({1: 1.0}) > 0.85 and head.predict({2: 1.0}) < 0.15
    assert 99 not in head.weights  # a tiny, uninformative feature never passes the L1 threshold


def test_model_ranks_hard_queries_first_and_gain_is_the_difference_of_the_heads():
    model = RouterModel(FeatureSet.build(), hyper={"alpha": 0.3, "l1": 0.05}).fit(toy(), epochs=3)
    hard = model.estimate(Query("please derive item 3"))
    easy = model.estimate(Query("please status item 3"))
    assert hard.fail > 0.7 > 0.3 > easy.fail
    assert hard.gain > easy.gain
    assert abs(hard.gain - (hard.large_ok - hard.small_ok)) < 1e-12 and abs(hard.fail - (1 - hard.small_ok)) < 1e-12


def test_model_file_round_trip_scores_identically_and_is_versioned(tmp_path):
    model = RouterModel(FeatureSet.build(domain="helpdesk"), hyper={"alpha": 0.3}).fit(toy(), epochs=2)
    path = tmp_path / "m.json"
    modelfile.save(model, path, training={"data_digest": modelfile.data_digest(toy())}, metrics={"apgr": 0.7})
    loaded, doc = modelfile.load(path)
    for text in ("please prove item 1", "please hours item 2", "unseen words here"):
        a, b = model.estimate(Query(text)), loaded.estimate(Query(text))
        assert abs(a.fail - b.fail) < 1e-5 and abs(a.gain - b.gain) < 1e-5  # weights are float32 in the file
    assert doc["format_version"] == modelfile.FORMAT_VERSION and doc["feature_set"]["blocks"]["domain"] == {"value": "helpdesk"}
    assert doc["metrics"] == {"apgr": 0.7} and len(doc["training"]["data_digest"]) == 64
    doc["format_version"] = 99
    with pytest.raises(ValueError, match="newer"):
        modelfile.from_json(doc)
    with pytest.raises(ValueError, match="not a router model"):
        modelfile.from_json({"format": "other"})
    doc["format_version"] = 1
    doc["feature_set"]["blocks"]["token_scores"] = {"table": "x"}
    with pytest.raises(ValueError, match="feature block 'token_scores'.*upgrade"):
        modelfile.from_json(doc)
    del doc["heads"]["large_ok"]
    with pytest.raises(ValueError, match="missing field 'large_ok'"):
        modelfile.from_json({**doc, "feature_set": FeatureSet.build().to_json()})


def test_data_digest_changes_with_a_label():
    a = toy(20)
    b = list(a)
    b[3] = Example(b[3].query, not b[3].slm_ok, b[3].llm_ok, group=b[3].group)
    assert modelfile.data_digest(a) != modelfile.data_digest(b)


def test_serving_file_without_optimizer_state_can_keep_learning(tmp_path):
    model = RouterModel(FeatureSet.build(), hyper={"alpha": 0.3}).fit(toy(), epochs=2)
    path = tmp_path / "m.json"
    modelfile.save(model, path)
    loaded, _ = modelfile.load(path)
    before = loaded.estimate(Query("please status item 1")).fail
    for _ in range(30):
        loaded.learn(Example(Query("please status item 1"), slm_ok=False, llm_ok=True))
    assert loaded.estimate(Query("please status item 1")).fail > before + 0.2


def test_top_contributions_name_the_words_that_moved_the_score():
    model = RouterModel(FeatureSet.build(), hyper={"alpha": 0.3}).fit(toy(), epochs=2)
    top = model.top_contributions(Query("please derive item 1"), k=3)
    assert dict(top).get("word 'derive'", 0) < 0  # it lowered P(small right)
    assert any("derive" in name for name, _ in top)


def test_training_is_deterministic_for_a_seed():
    a = RouterModel(FeatureSet.build(), hyper={"alpha": 0.3}).fit(toy(), epochs=2, seed=4)
    b = RouterModel(FeatureSet.build(), hyper={"alpha": 0.3}).fit(toy(), epochs=2, seed=4)
    assert a.heads["small_ok"].weights == b.heads["small_ok"].weights and a.heads["large_ok"].weights == b.heads["large_ok"].weights
