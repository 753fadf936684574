"""The learned router's offline tools: train-router, eval-router (held-out groups, group k-fold, online replay).

The learning code is ``modelyard_learn``; this module wires the router's keyword analysis into it (its
factors are features, its level and incident feed the routing rule), reads labelled files, keeps the
rows a model was trained on out of its evaluation, and puts the router's own keyword ranking, prompt
length and a random ranking beside every learned figure, on the same rows.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from modelyard_learn import metrics, modelfile, online
from modelyard_learn.features import Analyze, FeatureSet, Keywords
from modelyard_learn.model import Example
from modelyard_learn.recipes import RECIPES, cross_validate, held_out_figures
from modelyard_learn.recipes import train as train_recipe
from modelyard_learn.train import load_examples, measure, split_by_group

HELPDESK = "data/helpdesk"
#: The helpdesk set's parts (README there): the shipped model's training files (five writers) and the held-out
#: files its file reports on (``authored_heldout.jsonl`` is in neither: its writer also wrote ``authored_tuning``).
HELPDESK_TUNING = ("team_seed.jsonl", "authored_tuning.jsonl", "independent_tuning_a.jsonl",
                   "independent_tuning_b.jsonl", "independent_tuning_c.jsonl")
HELPDESK_HELD_OUT = ("independent_heldout_d.jsonl", "banking77_sample.jsonl")
HELPDESK_GROUP_BY = "source"  # thresholds are chosen leaving one writer out at a time
#: The online replay's learner, as measured for issue 16: an untrained start, words only, FTRL alpha 0.3.
ONLINE_FEATURES = FeatureSet.build(chars=None, structure=False, context=False, factors=False)
ONLINE_HYPER = dict(alpha=0.3, beta=1.0, l1=0.1, l2=1.0)


def helpdesk_file(name: str) -> Path:
    return Path(str(resources.files("modelyard").joinpath(f"{HELPDESK}/{name}")))


def mmlu_held_out_subjects() -> list[str]:
    """The 12 MMLU subjects drawn before any model was trained (``random.Random(20261201).sample``) and
    kept out of every training and tuning run of the shipped MMLU model."""
    text = resources.files("modelyard").joinpath("data/mmlu_held_out_subjects.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def keyword_analyze() -> Analyze:
    """The router's keyword analysis as ``modelyard_learn`` wants it (memoised: training reads rows many times)."""
    from modelyard_router.complexity import load_complexity_model

    model = load_complexity_model()

    @cache
    def analyze(text: str, role: str | None, history: int, agent: str | None) -> Keywords:
        a = model.analyze(text, user_role=role, history_turns=history, agent_type=agent)
        return Keywords(a.factors, a.level.value, a.incident)

    return analyze


def read(paths: Sequence[str | Path], *, small_column: str, large_column: str, group_by: str | None) -> list[Example]:
    return load_examples(paths, keyword_analyze(), small_column=small_column, large_column=large_column, group_by=group_by)


def parse_groups(spec: str | None) -> set[str]:
    """``a,b,c``, or ``@file`` with one group per line (``#`` starts a comment)."""
    if not spec:
        return set()
    if spec.startswith("@"):
        lines = Path(spec[1:]).read_text().splitlines()
        return {line.strip() for line in lines if line.strip() and not line.strip().startswith("#")}
    return {g.strip() for g in spec.split(",") if g.strip()}


def train(data: Sequence[str], out: Path, *, recipe: str, held_out: Sequence[str], held_out_groups: set[str],
          small_column: str, large_column: str, group_by: str | None, seed: int) -> dict:
    columns = dict(small_column=small_column, large_column=large_column, group_by=group_by)
    rows = read(data, **columns)
    rows, held = split_by_group(rows, held_out_groups)
    missing = held_out_groups - {e.group for e in held}
    if missing:
        raise ValueError(f"held-out groups not in the data: {sorted(missing)}")
    held += read(held_out, **columns) if held_out else []
    sources = [*map(str, data)] + ([f"minus the held-out groups {sorted(held_out_groups)}"] if held_out_groups else [])
    _, doc = train_recipe(RECIPES[recipe], rows, out, held_out=held, sources=sources, group_by=group_by, seed=seed)
    doc["training"]["held_out_sources"] = [*map(str, held_out)]
    modelfile.write(doc, out)
    return {"out": str(out), "bytes": out.stat().st_size, "training": doc["training"], "metrics": doc["metrics"],
            "routing": doc["routing"]}


def references(rows: Sequence[Example], seed: int = 0, random_runs: int = 10) -> dict:
    """Today's router's keyword score, prompt length and random rankings on these rows (APGR, savings)."""
    labelled = [e for e in rows if e.llm_ok is not None]
    small, large = [e.slm_ok for e in labelled], [bool(e.llm_ok) for e in labelled]
    if sum(large) <= sum(small):
        return {}
    keyword = [float(e.query.factors.get("heuristic_score", 0.0)) for e in labelled]
    length = [float(len(e.query.text)) for e in labelled]
    randoms = [metrics.apgr(_uniform(random.Random(seed + r), len(labelled)), small, large) for r in range(random_runs)]
    return {
        "keyword_score": metrics.report(keyword, small, large),
        "prompt_length": metrics.report(length, small, large),
        "random": {"apgr_mean": round(statistics.fmean(randoms), 4), "runs": random_runs,
                   "apgr_stdev": round(statistics.stdev(randoms), 4) if random_runs > 1 else 0.0},
    }


def _uniform(rng: random.Random, n: int) -> list[float]:
    return [rng.random() for _ in range(n)]


def evaluate_model(data: Sequence[str], model_path: Path, *, small_column: str, large_column: str,
                   group_by: str | None, seed: int) -> dict:
    """A model file on the rows of groups it was not trained on (its ``training.groups``)."""
    model, doc = modelfile.load(model_path)
    rows = read(data, small_column=small_column, large_column=large_column, group_by=group_by)
    trained = modelfile.trained_groups(doc)
    unseen, seen = split_by_group(rows, trained)
    if not unseen:
        raise ValueError(f"every row of {', '.join(map(str, data))} belongs to a group {model_path} was trained on: "
                         "nothing to evaluate it on (--group-by names another grouping)")
    thresholds = (doc.get("routing") or {}).get("thresholds") or {}
    return {
        "data": [*map(str, data)],
        "router_model": str(model_path),
        "split": "rows of groups the model was not trained on (its training.groups)",
        "rows": len(rows),
        "rows_skipped_trained_groups": len(seen),
        "rows_evaluated": len(unseen),
        "groups_evaluated": sorted({e.group for e in unseen}),
        "learned": held_out_figures(model, unseen, thresholds) if thresholds else {"correctness": measure(model, unseen)},
        "references": references(unseen, seed),
    }


def evaluate_by_folds(data: Sequence[str], *, recipe: str, folds: int, small_column: str, large_column: str,
                      group_by: str | None, seed: int, exclude: set[str] = frozenset()) -> dict:
    """Group k-fold of a recipe: every group is scored by a model that never saw it (``exclude``: groups kept out)."""
    rows, left_out = split_by_group(read(data, small_column=small_column, large_column=large_column, group_by=group_by),
                                    exclude)
    if exclude - {e.group for e in left_out}:
        raise ValueError(f"excluded groups not in the data: {sorted(exclude - {e.group for e in left_out})}")
    return {
        "data": [*map(str, data)],
        "split": f"group {folds}-fold: each fold's groups scored by a model of the {recipe} recipe trained on the others",
        "excluded_groups": sorted(exclude),
        "rows": len(rows),
        "groups": len({e.group for e in rows}),
        "learned": cross_validate(RECIPES[recipe], rows, folds=folds, seed=seed),
        "references": references(rows, seed),
    }


def evaluate_online(data: Sequence[str], *, seed: int, strong_share: float, small_column: str, large_column: str,
                    group_by: str | None, router_model: Path | None = None) -> dict:
    """The online replay from an untrained start, or (``router_model``) from a model file's learning copy as the
    router's learner makes it, on the rows of groups that file was not trained on: what a deployment that meets new
    tenants' traffic learns from its own outcomes. Beside the latter, the file's own (static) APGR on the same halves."""
    config = online.ReplayConfig(strong_share=strong_share)
    if router_model is None:
        rows = load_examples(data, None, small_column=small_column, large_column=large_column, group_by=group_by)
        return online.replay(rows, ONLINE_FEATURES, seed=seed, config=config, hyper=ONLINE_HYPER)
    from modelyard_router.learned import LearnedRouter
    from modelyard_router.learner import learning_copy
    from modelyard_router.settings import LearnedRouting

    served = LearnedRouter.load(str(router_model))
    rows = read(data, small_column=small_column, large_column=large_column, group_by=group_by)
    unseen, seen = split_by_group(rows, modelfile.trained_groups(served.doc))
    if not unseen:
        raise ValueError(f"every row belongs to a group {router_model} was trained on: nothing to replay")
    defaults = LearnedRouting()
    copy = learning_copy(served, defaults.prior_n, defaults.tenant_value)
    result = online.replay(unseen, copy.feature_set, seed=seed, config=config, model=copy)
    static = modelfile.from_json(served.doc)
    order = online.replay_order(len(unseen), random.Random(seed))
    gains = [static.estimate(unseen[i].query).gain for i in order]
    small, large = [unseen[i].slm_ok for i in order], [bool(unseen[i].llm_ok) for i in order]
    half = len(order) // 2
    result["static_model"] = {"apgr_first_half": round(metrics.apgr(gains[:half], small[:half], large[:half]), 4),
                              "apgr_last_half": round(metrics.apgr(gains[half:], small[half:], large[half:]), 4)}
    result.update(router_model=str(router_model), rows_skipped_trained_groups=len(seen),
                  groups_evaluated=sorted({e.group for e in unseen}),
                  learning_copy={"prior_n": defaults.prior_n, "tenant_value": defaults.tenant_value})
    return result
