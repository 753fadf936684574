"""The cascade's tools: cascade-score, train-scorer, eval-cascade, and the scorer's benchmarks.

Each runs the inference worker's own judging code (``modelyard_inference.answers``); training needs the
app's ``train`` extra (numpy, scikit-learn), imported only by the commands that train.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .cascade import DEFAULT_C, DEFAULT_MAX_COST, PIPELINE_WINDOW
from .cascade.data import GSM8K_DEV, GSM8K_SPLIT, LARGE_MODEL, SMALL_MODEL

DataFile = Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help="CSV (RouteLLM's layout) or JSON lines.")]
Scorer = Annotated[Path | None, typer.Option("--scorer", exists=True, dir_okay=False,
                                             help="Scorer model file (modelyard train-scorer); default: the shipped one.")]
Split = Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                            help="Split file (rows and folds, e.g. the shipped gsm8k_dev.split.json).")]
Part = Annotated[str, typer.Option(help="With --split: 'dev' or 'held_out'.")]
PromptColumn = Annotated[str, typer.Option(help="CSV: the question column.")]
SmallModel = Annotated[str, typer.Option(help="CSV: the model whose answers are scored ('<model>' and '<model>_response').")]
LargeModel = Annotated[str, typer.Option(help="CSV: the model an escalation calls; '' for none (no cost figures).")]
CorrectColumn = Annotated[str | None, typer.Option(help="CSV: the true/false column; default: the small model's.")]
ResponseColumn = Annotated[str | None, typer.Option(help="CSV: the answer column; default: '<small model>_response'.")]
LargeResponseColumn = Annotated[str | None, typer.Option(help="CSV: the large model's answers; default: '<large model>_response'.")]


def _csv(prompt_column: str, small_model: str, large_model: str, correct_column: str | None,
         response_column: str | None, large_response_column: str | None) -> dict[str, Any]:
    return {"prompt_column": prompt_column, "small_model": small_model, "large_model": large_model or None,
            "correct_column": correct_column, "response_column": response_column,
            "large_response_column": large_response_column}


def _command_line(name: str, files: list[Path], **options: Any) -> str:
    """How the command was called (for a model file's provenance), its options in a fixed order."""
    words = ["modelyard", name, "--data", *(str(f) for f in files)]
    for key, value in options.items():
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(words)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def trained_on(scorer: Path | None, sha256: str) -> bool:
    """Whether the scorer's model file says it was trained on a file with this digest (figures are then in-sample)."""
    from modelyard_inference.answers import load_model

    return any(d.get("sha256") == sha256 for d in load_model(scorer).data.get("training", {}).get("data", []))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command("cascade-score")
    def cascade_score(
        threshold: Annotated[float, typer.Option(min=0, max=1, help="Confidence below which an answer escalates.")] = 0.6,
        scorer: Scorer = None,
    ) -> None:
        """Read JSON lines {"query", "response" | "samples", "logprobs"?, "finish_reason"?, "response_format"?} on
        stdin; write {"confidence", "escalate", "reasons", "p_wrong", "hard"} per line (the worker's judgement)."""
        from modelyard_inference.answers import load_model

        from .cascade.offline import score_lines

        try:
            model = load_model(scorer)
        except ValueError as exc:
            raise _fail(exc) from None
        for line in score_lines(sys.stdin, threshold=threshold, model=model):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    @app.command("train-scorer")
    def train_scorer(
        out: Annotated[Path, typer.Option(help="Where to write the model file (JSON).")],
        data: Annotated[list[Path], typer.Option(exists=True, dir_okay=False,
                                                 help="Labelled answers: CSV or JSON lines {query, response, correct, "
                                                      "logprobs?, finish_reason?}; repeat, or list more files after it.")],
        more: Annotated[list[Path] | None, typer.Argument(exists=True, dir_okay=False, show_default=False,
                                                          help="More data files.")] = None,
        split: Split = None,
        part: Part = "dev",
        c: Annotated[float, typer.Option(min=1e-6, help="Inverse L2 strength of the logistic regression.")] = DEFAULT_C,
        max_cost: Annotated[float, typer.Option(min=0, help="Put the neutral threshold 0.6 on the most escalation whose "
                                                "cross-validated cost stays within this share of large-only (0: don't).")] = DEFAULT_MAX_COST,
        prompt_column: PromptColumn = "prompt", small_model: SmallModel = SMALL_MODEL, large_model: LargeModel = LARGE_MODEL,
        correct_column: CorrectColumn = None, response_column: ResponseColumn = None,
        large_response_column: LargeResponseColumn = None,
    ) -> None:
        """Learn the answer scorer (P(answer wrong)) from labelled answers; print a JSON summary (CV AUROC, calibration)."""
        from .cascade.data import load_examples
        from .cascade.train import train_model

        options = _csv(prompt_column, small_model, large_model, correct_column, response_column, large_response_column)
        files = [*data, *(more or [])]
        command = _command_line("train-scorer", files, out=out, split=split, part=part if split else None, c=c,
                                max_cost=max_cost, **options)
        try:
            examples, folds, provenance = load_examples(files, split=split, part=part, **options)
            model, summary = train_model(examples, folds=folds, c=c, max_cost=max_cost or None, provenance=provenance,
                                         command=command)
        except ValueError as exc:
            raise _fail(exc) from None
        out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        typer.echo(json.dumps({"out": str(out), **summary}))

    @app.command("eval-cascade")
    def eval_cascade(
        data: DataFile = GSM8K_DEV,
        offline: Annotated[bool, typer.Option("--offline", help="Score the files here instead of through a running stack.")] = False,
        scorer: Scorer = None,
        split: Split = None,
        part: Part = "held_out",
        sample: Annotated[int, typer.Option(min=0, help="Use every n-th question so that about this many remain (0: all).")] = 0,
        api_url: Annotated[str, typer.Option(envvar="MODELYARD_DEMO_API_URL")] = "http://127.0.0.1:8080",
        timeout_s: Annotated[float, typer.Option(help="Pipeline mode: how long to wait for every outcome.")] = 300.0,
        window: Annotated[int, typer.Option(min=1, help="Pipeline mode: queries without an outcome at a time.")] = PIPELINE_WINDOW,
        prompt_column: PromptColumn = "prompt", small_model: SmallModel = SMALL_MODEL, large_model: LargeModel = LARGE_MODEL,
        correct_column: CorrectColumn = None, response_column: ResponseColumn = None,
        large_response_column: LargeResponseColumn = None,
    ) -> None:
        """Quality and cost per tenant policy (cost, balanced, quality) on labelled answers, against the large model
        alone: through the running pipeline (the simulator replaying the recorded answers), or --offline."""
        from .cascade.data import load_examples
        from .cascade.report import every_nth, print_table

        options = _csv(prompt_column, small_model, large_model, correct_column, response_column, large_response_column)
        try:
            examples, _, provenance = load_examples([data], split=split, part=part, **options)
        except ValueError as exc:
            raise _fail(exc) from None
        if any(e.large_response is None for e in examples):
            raise _fail(ValueError("eval-cascade needs the large model's answers (--large-model) to price an escalation"))
        examples = every_nth(examples, sample)
        source = {"data": provenance, "questions": len(examples), "of": provenance[0]["rows"],
                  "scorer_trained_on_this_file": trained_on(scorer, provenance[0]["sha256"])}
        if offline:
            from modelyard_inference.answers import load_model

            from .cascade.offline import evaluate

            result = {"mode": "offline", **source, **evaluate(examples, load_model(scorer))}
            code = 0
        else:
            if scorer is not None:
                raise _fail(ValueError("--scorer applies to --offline; the pipeline's workers load MODELYARD_CASCADE__SCORER"))
            from .cascade.pipeline import run_pipeline_eval
            from .loop import run

            result, code = run(run_pipeline_eval(examples, api_url=api_url, timeout_s=timeout_s, window=window))
            result = {"mode": "pipeline", **source, **result}
        print_table(result)
        typer.echo(json.dumps(result))
        raise typer.Exit(code)

    @bench_app.command("scorer")
    def bench_scorer(
        data: DataFile = GSM8K_DEV,
        scorer: Scorer = None,
        repeat: Annotated[int, typer.Option(min=1)] = 3,
    ) -> None:
        """Scoring latency per answer (wall clock and CPU, p50/p99) over a file's small-model answers."""
        from .cascade.bench import bench_latency

        typer.echo(json.dumps(bench_latency(data, scorer, repeat)))

    @bench_app.command("cascade")
    def bench_cascade(
        data: DataFile = GSM8K_DEV,
        split: Annotated[Path, typer.Option(exists=True, dir_okay=False)] = GSM8K_SPLIT,
        draws: Annotated[int, typer.Option(min=100)] = 2000,
        budgets: Annotated[str, typer.Option(help="Calibration budgets (CV cost at the neutral threshold) to compare.")]
        = "0.40,0.45,0.475,0.50,0.525",
    ) -> None:
        """The scorer's offline figures: nested-CV AUROC, held-out quality/cost per policy with bootstrap ranges,
        the calibration budget's chance of meeting the goal, verifiers' precision/recall, the seed scorer (needs numpy/scikit-learn)."""
        from .cascade.bench import bench_quality

        result = bench_quality(data, split, draws=draws, budgets=[float(b) for b in budgets.split(",")])
        typer.echo(json.dumps(result))
