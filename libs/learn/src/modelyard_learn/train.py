"""Training and measuring router models (what ``modelyard train-router`` and ``eval-router`` run).

A ``Recipe`` (``recipes.py``) says which features, optimiser settings and epochs to use and how to
choose the routing thresholds; ``train`` fits it on labelled examples, measures it on a held-out part
when one is given, and writes the versioned model file with the groups it was trained on. The router's
keyword analysis reaches this package only as an ``Analyze`` function (the application wires it), so
nothing here depends on the router.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from . import metrics, modelfile, readers
from .features import Analyze
from .model import Example, RouterModel


def load_examples(paths: Sequence[str | Path], analyze: Analyze | None = None, weight: float = 1.0, **read_options) -> list[Example]:
    """Every example of every path (CSV file or folder, JSONL), in order."""
    out: list[Example] = []
    for path in paths:
        options = {"group_by": read_options.get("group_by")} if readers.is_jsonl(path) else read_options
        for e in readers.read(path, analyze, **options):
            out.append(replace(e, weight=e.weight * weight) if weight != 1.0 else e)
    return out


def split_by_group(examples: Sequence[Example], groups: set[str] | frozenset[str]) -> tuple[list[Example], list[Example]]:
    """(rows of other groups, rows of ``groups``)."""
    rest = [e for e in examples if e.group not in groups]
    inside = [e for e in examples if e.group in groups]
    return rest, inside


def group_folds(examples: Sequence[Example], k: int) -> list[set[str]]:
    """``k`` disjoint sets of groups of about equal row counts: the largest group first, each into the
    fold with the fewest rows so far (ties: the lower fold). Deterministic."""
    sizes: dict[str, int] = {}
    for e in examples:
        sizes[e.group] = sizes.get(e.group, 0) + 1
    if len(sizes) < k:
        raise ValueError(f"{len(sizes)} groups cannot be split into {k} folds: pass fewer folds or --group-by another column")
    folds: list[set[str]] = [set() for _ in range(k)]
    rows = [0] * k
    for group in sorted(sizes, key=lambda g: (-sizes[g], g)):
        lightest = rows.index(min(rows))
        folds[lightest].add(group)
        rows[lightest] += sizes[group]
    return folds


def has_both_models(examples: Sequence[Example]) -> bool:
    return any(e.llm_ok is not None for e in examples)


def measure(model: RouterModel, examples: Sequence[Example]) -> dict:
    """APGR of the expected gain and of P(small fails), AUROC, savings at 80/90/95% of the large model's quality."""
    labelled = [e for e in examples if e.llm_ok is not None]
    if not labelled:
        return {}
    est = [model.estimate(e.query) for e in labelled]
    return measure_scores([x.gain for x in est], [x.fail for x in est], labelled)


def measure_scores(gains: Sequence[float], fails: Sequence[float], labelled: Sequence[Example]) -> dict:
    small = [e.slm_ok for e in labelled]
    large = [bool(e.llm_ok) for e in labelled]
    if sum(large) <= sum(small):
        return {"rows": len(labelled), "note": "the large model is not better than the small one on these rows"}
    out = metrics.report(gains, small, large)
    out["apgr_fail_score"] = round(metrics.apgr(fails, small, large), 4)
    if 0 < sum(small) < len(small):  # how well the served score (P(small fails)) finds the small model's failures
        out["auroc_small_fails"] = round(metrics.auroc(fails, [not s for s in small]), 4)
    return out


def training_record(examples: Sequence[Example], *, epochs: int, balance_by_group: float, seed: int, seconds: float,
                    sources: Sequence[str], group_by: str | None, recipe: str) -> dict:
    return {
        "recipe": recipe,
        "data_digest": modelfile.data_digest(examples),
        "rows": len(examples),
        "sources": [str(s) for s in sources],
        "group_by": group_by or "default (CSV: the file's subject; JSONL: tenant, group, style or source)",
        "groups": sorted({e.group for e in examples}),
        "epochs": epochs,
        "balance_by_group": balance_by_group,
        "seed": seed,
        "seconds": round(seconds, 1),
    }


def timed_fit(model: RouterModel, examples: Sequence[Example], **fit_options) -> tuple[RouterModel, float]:
    started = time.process_time()
    model.fit(examples, **fit_options)
    return model, time.process_time() - started
