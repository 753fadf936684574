"""Is a model's answer good enough to keep? Verifiers, a trained answer scorer and self-consistency.

The inference worker judges every answer with ``judge`` (one completion, or the k completions of a
self-consistency request) and ``modelyard cascade-score`` runs the same code offline, so a threshold chosen
on logs behaves the same in production. Pure Python (``jsonschema`` only for answers to structured-output
requests); training lives in the ``modelyard`` app (``modelyard train-scorer``), never in the service.

| module        | what                                                                               |
|---------------|------------------------------------------------------------------------------------|
| numbers       | numbers as a word problem writes them ("$1,200.50", "20%", "half", "a dozen")       |
| arithmetic    | re-computing the steps an answer shows ("a op b = c", chains, ``<<9*2=18>>``)         |
| analysis      | one shared pass over (question, answer): type of question, final answer, operands  |
| verifiers     | named findings, hard (escalate whatever the score) or soft                         |
| features      | compact, explainable features of one answer for the scorer                         |
| scorer        | the model file and ``score``: P(answer wrong), confidence = 1 - P, reasons          |
| consistency   | ``judge``: one answer, or k answers compared by their final answers                |
"""

from .analysis import reasoning_question
from .consistency import DEFAULT_MIN_AGREEMENT, Judgement, judge
from .scorer import DEFAULT_THRESHOLD, Model, Score, default_model, load_model, score

__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "DEFAULT_THRESHOLD",
    "Judgement",
    "Model",
    "Score",
    "default_model",
    "judge",
    "load_model",
    "reasoning_question",
    "score",
]
