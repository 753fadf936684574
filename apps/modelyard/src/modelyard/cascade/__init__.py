"""The cascade's offline side: readers of labelled answers, training, evaluation, benchmarks (the judging code
itself is the inference service's ``modelyard_inference.answers``)."""

#: Training defaults, here so that the CLI can show them without importing the training code.
DEFAULT_C = 0.1  # inverse L2 strength of the logistic regression
DEFAULT_MAX_COST = 0.50  # calibration budget, chosen by bootstrap over out-of-sample predictions: docs/benchmarks.md (issue 17)
#: eval-cascade through the pipeline: queries without an outcome at a time (the workers' concurrency, not a
#: burst of the whole dataset, which on a small shared machine keeps the backend busy past the call deadline)
PIPELINE_WINDOW = 256
