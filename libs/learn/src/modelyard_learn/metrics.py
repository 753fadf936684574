"""Router metrics on labelled data: APGR, AUROC, and the cost saved at a share of the large model's quality.

One PGR curve for every tool (the router's offline commands use it too): send the k highest-scored queries to the large model,
k = 0..n; PGR(k) = (accuracy - small accuracy) / (large accuracy - small accuracy); APGR is the
trapezoid mean over k. Queries with equal scores go up in random order, so their gain counts as
the group's mean (a constant score scores exactly 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence


def pgr_curve(scores: Sequence[float], small: Sequence[bool], large: Sequence[bool]) -> list[float]:
    n = len(scores)
    if not (n == len(small) == len(large)) or n == 0:
        raise ValueError("scores, small and large must be non-empty and of one length")
    gap = sum(large) - sum(small)
    if gap <= 0:
        raise ValueError("the large model is not better than the small one on this data")
    order = sorted(range(n), key=lambda i: -scores[i])
    cumulative, total, i = [0.0], 0.0, 0
    while i < n:
        j = i
        while j < n and scores[order[j]] == scores[order[i]]:
            j += 1
        mean_gain = sum(int(large[k]) - int(small[k]) for k in order[i:j]) / (j - i)
        for _ in range(i, j):
            total += mean_gain
            cumulative.append(total)
        i = j
    return [c / gap for c in cumulative]


def apgr(scores: Sequence[float], small: Sequence[bool], large: Sequence[bool]) -> float:
    curve = pgr_curve(scores, small, large)
    n = len(curve) - 1
    return (sum(curve) - (curve[0] + curve[-1]) / 2) / n


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney)."""
    pairs = sorted(zip(scores, labels, strict=True))
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if pos == 0 or neg == 0:
        raise ValueError("AUROC needs both classes")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2  # 1-based mean rank of the tie group
        rank_sum += mid_rank * sum(1 for _, y in pairs[i:j] if y)
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def savings_at_quality(
    scores: Sequence[float],
    small: Sequence[bool],
    large: Sequence[bool],
    targets: Sequence[float] = (0.8, 0.9, 0.95),
    small_cost: float = 1.0,
    large_cost: float = 15.0,
) -> dict[str, float | None]:
    """For each target share of the large model's accuracy: the cost saved against sending every query to
    the large model, at the smallest strong-call share that reaches it (None if none does)."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: -scores[i])
    correct = sum(small)
    large_acc = sum(large) / n
    best: dict[str, float | None] = {f"{t:.2f}": None for t in targets}
    pending = sorted(targets)
    for k in range(n + 1):
        if k:
            i = order[k - 1]
            correct += int(large[i]) - int(small[i])
        while pending and correct / n >= pending[0] * large_acc:
            cost = (k * large_cost + (n - k) * small_cost) / (n * large_cost)
            best[f"{pending[0]:.2f}"] = round(1.0 - cost, 4)
            pending.pop(0)
        if not pending:
            break
    return best


def report(scores: Sequence[float], small: Sequence[bool], large: Sequence[bool]) -> dict:
    return {
        "rows": len(scores),
        "small_accuracy": round(sum(small) / len(small), 4),
        "large_accuracy": round(sum(large) / len(large), 4),
        "apgr": round(apgr(scores, small, large), 4),
        "savings_at_quality": savings_at_quality(scores, small, large),
    }


#: The seed's traffic mix (README of the seed: simple 60-70%, moderate 10-15%, complex 10-15%,
#: critical 5-10%): the middle of each range, and the end of the ranges hardest on savings.
MIX_MIDDLE = {"simple": 0.65, "moderate": 0.125, "complex": 0.125, "critical": 0.075}
MIX_HARD_END = {"simple": 0.60, "moderate": 0.15, "complex": 0.15, "critical": 0.10}
CLASS_COST = {"slm": 1.0, "llm": 15.0, "llm_plus": 30.0}


def level_routing_report(levels: Sequence[str], classes: Sequence[str], mixes: dict | None = None) -> dict:
    """Helpdesk goal figures: the share of complex/critical rows that reach an LLM (llm or llm_plus),
    the share of simple/moderate rows sent up, and the cost saved against sending every query to the
    LLM when each level's rows are routed as measured and weighted by a traffic mix (levels absent
    from the data are left out of the mix and the rest renormalised)."""
    mixes = mixes or {"middle": MIX_MIDDLE, "hard_end": MIX_HARD_END}
    hard = [c != "slm" for lv, c in zip(levels, classes) if lv in ("complex", "critical")]
    easy = [c != "slm" for lv, c in zip(levels, classes) if lv in ("simple", "moderate")]
    out: dict = {
        "rows": len(levels),
        "complex_critical_rows": len(hard),
        "complex_critical_reach_llm": round(sum(hard) / len(hard), 4) if hard else None,
        "simple_moderate_sent_up": round(sum(easy) / len(easy), 4) if easy else None,
    }
    for name, mix in mixes.items():
        present = {lv: share for lv, share in mix.items() if lv in levels}
        total_share = sum(present.values())
        cost = 0.0
        for lv, share in present.items():
            routed = [CLASS_COST[c] for l_, c in zip(levels, classes) if l_ == lv]
            cost += share / total_share * sum(routed) / len(routed)
        out[f"savings_{name}_mix"] = round(1.0 - cost / CLASS_COST["llm"], 4)
    return out
