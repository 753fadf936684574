"""The learned router's commands: `modelyard train-router` and `modelyard eval-router` (issue 16).

Each prints a table on stderr and one JSON object as its last line on stdout; bad data is a one-line
error naming the file, the line and the field (exit code 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_MMLU = Path(__file__).resolve().parents[4] / ".." / "shared" / "data" / "routellm_mmlu"
SMALL_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"  # the shared MMLU data's columns (modelyard_learn.readers)
LARGE_COLUMN = "gpt-4-1106-preview"

Data = Annotated[list[Path], typer.Option("--data", help="Labelled data: a RouteLLM CSV file or folder, or JSONL "
                                          "{text, slm_ok, llm_ok | level, ...}. Repeat for several.")]
Small = Annotated[str, typer.Option(help="CSV column: the small model's correctness.")]
Large = Annotated[str, typer.Option(help="CSV column: the large model's correctness.")]
GroupBy = Annotated[str | None, typer.Option(help="CSV column or JSONL field naming each row's group (default: CSV: "
                                             "the file's subject; JSONL: tenant, group, style or source).")]
Recipe = Annotated[str, typer.Option(help="Training recipe: mmlu (correctness labels) or helpdesk (level labels).")]


def _fail(message: str) -> None:
    typer.echo(json.dumps({"error": message}))
    raise typer.Exit(2)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command("train-router")
    def train_router(
        data: Data,
        out: Annotated[Path, typer.Option(help="Where to write the model file.")],
        recipe: Recipe = "mmlu",
        held_out: Annotated[list[Path] | None, typer.Option(help="Labelled files measured once, never trained on.")] = None,
        held_out_groups: Annotated[str | None, typer.Option(help="Groups left out of training and measured once: "
                                                                  "a,b,c or @file (one per line).")] = None,
        small_column: Small = SMALL_COLUMN,
        large_column: Large = LARGE_COLUMN,
        group_by: GroupBy = None,
        seed: int = 0,
    ) -> None:
        """Train a router model file from labelled queries (features, weights, thresholds, training groups, metrics)."""
        from . import learning

        if recipe not in learning.RECIPES:
            raise typer.BadParameter(f"--recipe must be one of {', '.join(learning.RECIPES)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = learning.train(data, out, recipe=recipe, held_out=held_out or [],
                                    held_out_groups=learning.parse_groups(held_out_groups), small_column=small_column,
                                    large_column=large_column, group_by=group_by, seed=seed)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
        _print_training(result)
        typer.echo(json.dumps(result))

    @app.command("eval-router")
    def eval_router(
        data: Annotated[list[Path] | None, typer.Option("--data", help="Labelled data (as train-router); default: the "
                                                        "shared MMLU folder.")] = None,
        router_model: Annotated[Path | None, typer.Option(help="A model file: evaluated on the rows of groups it was "
                                                          "not trained on.")] = None,
        online: Annotated[bool, typer.Option("--online", help="Replay the data in a seeded random order through the "
                                             "online learner from an untrained start (labels revealed as in production); "
                                             "with --router-model: from that file's learning copy, on the rows of groups "
                                             "it was not trained on.")] = False,
        group_by: GroupBy = None,
        recipe: Recipe = "mmlu",
        folds: Annotated[int, typer.Option(min=2, help="Without --router-model: group k-fold of --recipe.")] = 5,
        exclude_groups: Annotated[str | None, typer.Option(help="Group k-fold: groups left out entirely (a held-out "
                                                           "set kept untouched): a,b,c or @file.")] = None,
        reference_only: Annotated[bool, typer.Option(help="Only the keyword router's APGR (the output of earlier "
                                                     "versions; MMLU folder).")] = False,
        strong_share: Annotated[float, typer.Option(min=0.01, max=0.99, help="--online: share sent to the large model.")] = 0.3,
        small_column: Small = SMALL_COLUMN,
        large_column: Large = LARGE_COLUMN,
        seed: int = 0,
    ) -> None:
        """APGR and savings at 80/90/95% of the large model's quality, never on rows a model was trained on."""
        from . import learning

        paths = data or [DEFAULT_MMLU]
        columns = dict(small_column=small_column, large_column=large_column, group_by=group_by)
        try:
            if reference_only:
                from modelyard_router.offline import eval_router as run

                if len(paths) != 1 or not paths[0].is_dir():
                    raise ValueError(f"{paths[0]} is not a folder (pass --data ../shared/data/routellm_mmlu)")
                result = run(paths[0].resolve(), seed=seed)
            elif online:
                result = learning.evaluate_online(paths, seed=seed, strong_share=strong_share, router_model=router_model,
                                                  **columns)
            elif router_model is not None:
                result = learning.evaluate_model(paths, router_model, seed=seed, **columns)
            else:
                if recipe not in learning.RECIPES:
                    raise ValueError(f"--recipe must be one of {', '.join(learning.RECIPES)}")
                result = learning.evaluate_by_folds(paths, recipe=recipe, folds=folds, seed=seed,
                                                    exclude=learning.parse_groups(exclude_groups), **columns)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
        _print_evaluation(result)
        typer.echo(json.dumps(result))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console(stderr=True).print(table)


def _fmt(value) -> str:
    return "-" if value is None else (f"{value:.1%}" if isinstance(value, float) and value <= 1 else str(value))


def _ranking_rows(name: str, figures: dict) -> list[str]:
    savings = figures.get("savings_at_quality") or {}
    apgr = figures.get("apgr", figures.get("apgr_mean"))
    return [name, "-" if apgr is None else f"{apgr:.3f}", *(_fmt(savings.get(k)) for k in ("0.80", "0.90", "0.95"))]


def _print_evaluation(result: dict) -> None:
    if "apgr_first_half" in result:
        rows = [[h, f"{result[h]['apgr']:.3f}", _fmt(result[h]["strong_share"]), _fmt(result[h]["routed_accuracy"])]
                for h in ("first_half", "last_half")]
        static = result.get("static_model")
        if static:  # the same file, not learning, on the same halves
            rows += [[f"{h}, file alone", f"{static['apgr_' + h]:.3f}", "-", "-"]
                     for h in ("first_half", "last_half")]
        _table("online replay (prequential APGR of the expected gain)", ["half", "APGR", "strong share", "routed accuracy"],
               rows)
        return
    if "apgr_score" in result:
        _table("keyword router", ["ranking", "APGR"], [["keyword score", f"{result['apgr_score']:.3f}"],
                                                        ["prompt length", f"{result['apgr_length_only']:.3f}"],
                                                        ["random (mean)", f"{result['apgr_random_mean']:.3f}"]])
        return
    learned = result["learned"]
    rows = []
    if "apgr_mean_of_folds" in learned:
        rows.append(["learned, mean of folds", _fmt(learned["apgr_mean_of_folds"]) if learned["apgr_mean_of_folds"] is None
                     else f"{learned['apgr_mean_of_folds']:.3f}", "", "", ""])
        if learned.get("pooled_out_of_fold"):
            rows.append(_ranking_rows("learned, pooled out-of-fold", learned["pooled_out_of_fold"]))
    elif learned.get("correctness"):
        rows.append(_ranking_rows("learned model", learned["correctness"]))
    refs = result.get("references") or {}
    for key, name in (("keyword_score", "keyword score (no model)"), ("prompt_length", "prompt length"), ("random", "random")):
        if key in refs:
            rows.append(_ranking_rows(name, refs[key]))
    _table(f"{result['split']} ({result.get('rows_evaluated', result['rows'])} rows)",
           ["ranking", "APGR", "savings @80%", "@90%", "@95%"], rows)
    if learned.get("levels"):
        _table("levels: complex/critical reaching an LLM", ["threshold", "reach LLM", "simple/moderate up", "savings (mix)"],
               [[p, _fmt(r["complex_critical_reach_llm"]), _fmt(r["simple_moderate_sent_up"]), _fmt(r["savings_middle_mix"])]
                for p, r in learned["levels"].items()]
               + [["keyword router", _fmt(learned["keyword_router"]["complex_critical_reach_llm"]),
                   _fmt(learned["keyword_router"]["simple_moderate_sent_up"]),
                   _fmt(learned["keyword_router"]["savings_middle_mix"])]])


def _print_training(result: dict) -> None:
    training, held = result["training"], result["metrics"].get("held_out") or {}
    rows = [["rows / groups", f"{training['rows']} / {len(training['groups'])}"], ["data digest", training["data_digest"][:16]],
            ["seconds (CPU)", str(training["seconds"])],
            ["thresholds", ", ".join(f"{k} {v}" for k, v in result["routing"]["thresholds"].items())]]
    if held.get("correctness"):
        rows.append(["held-out APGR", f"{held['correctness']['apgr']:.3f} ({held['rows']} rows)"])
    for p, r in (held.get("levels") or {}).items():
        rows.append([f"held-out {p}", f"{_fmt(r['complex_critical_reach_llm'])} reach an LLM, "
                     f"{_fmt(r['simple_moderate_sent_up'])} sent up"])
    _table(f"train-router -> {result['out']}", ["", ""], rows)
