"""A completion's ``n`` choices: text, a worked solution with a final answer, JSON, or tool calls.

Each choice has its own random stream (``rng_for`` of the model, the sampling key and the conversation
plus the choice's index), so the choices of one request differ; with temperature 0 they share the
first one's (greedy decoding gives one answer). What the model emits is then cut at the first stop
sequence (finish_reason "stop") and at ``max_tokens`` (finish_reason "length"); tool calls count
against ``max_tokens`` too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from modelyard_simulator.config import ModelKnobs
from modelyard_simulator.difficulty import difficulty
from modelyard_simulator.generate import compose, finish, rng_for, token_probs
from modelyard_simulator.reasoning import Problem, is_word_problem, problem_for, prompt_numbers, sample
from modelyard_simulator.request import ChatRequest
from modelyard_simulator.schema_values import Hints, generate, spoil
from modelyard_simulator.structured import compose_json
from modelyard_simulator.tools import Tool, plan_calls
from modelyard_simulator.words import content_words, tokenize

#: Tokens a tool call costs besides its arguments (name and framing), roughly as OpenAI counts them.
TOOL_CALL_OVERHEAD = 3


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    #: the arguments JSON as emitted, in tokens (streamed as argument fragments)
    tokens: list[str]

    @property
    def arguments(self) -> str:
        return "".join(self.tokens)


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, once per request
class Choice:
    index: int
    #: None when the choice is tool calls
    content: str | None
    tokens: list[str]
    token_probs: list[float] | None
    finish_reason: str
    completion_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    final_answer: int | None = None
    right: bool | None = None
    #: "unparsable" or "schema" when the answer's JSON (structured output or tool arguments) is defective
    defect: str | None = None


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, once per request
class Completion:
    choices: list[Choice]
    difficulty: float
    hedged: bool
    source: str  # "generated" or "replay"
    #: the hidden right final answer, when the prompt has one (see reasoning.py)
    correct_answer: int | None = None

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)


def final_answer_in_play(knobs: ModelKnobs, question: str, conversation_key: str) -> bool:
    if knobs.final_answer == "never":
        return False
    return knobs.final_answer == "always" or is_word_problem(question) or "####" in conversation_key


def complete(
    chat: ChatRequest,
    knobs: ModelKnobs,
    *,
    sampling_key: str,
    greedy: bool,
    replay_text: str | None = None,
    forced_difficulty: float | None = None,
) -> Completion:
    """The answer of ``knobs``'s model to ``chat``: ``chat.n`` choices."""
    convo = chat.conversation
    level = difficulty(convo.question) if forced_difficulty is None else forced_difficulty
    marked = convo.system is not None and any(marker in convo.system for marker in knobs.hedge_markers)
    hedged = replay_text is None and (level > knobs.hedge_above or marked)
    problem = None
    calls: list[Tool] = []
    if replay_text is None:
        if final_answer_in_play(knobs, convo.question, convo.key):
            problem = problem_for(convo.question, knobs.distractors)
        if chat.tools is not None:
            calls = plan_calls(chat.tools, convo.question, bool(convo.tool_results))
    choices = []
    for index in range(chat.n):
        rng = rng_for(chat.model, sampling_key, convo.key if greedy or index == 0 else f"{convo.key}\x00{index}")
        if calls:
            choices.append(_tool_calls(index, chat, knobs, calls, rng))
        else:
            choices.append(_message(index, chat, knobs, level, hedged, problem, replay_text, rng))
    return Completion(
        choices, level, hedged, "replay" if replay_text is not None else "generated",
        problem.right.value if problem is not None else None,
    )


def _hints(chat: ChatRequest, prose: str, answer: int | None) -> Hints:
    question = chat.conversation.question
    return Hints(content_words(question, limit=12), question, prose, answer, prompt_numbers(question))


def _message(
    index: int,
    chat: ChatRequest,
    knobs: ModelKnobs,
    level: float,
    hedged: bool,
    problem: Problem | None,
    replay_text: str | None,
    rng: random.Random,
) -> Choice:
    convo = chat.conversation
    final = right = defect = None
    if replay_text is not None:
        text = replay_text
    else:
        sampled = sample(problem, knobs, level, rng) if problem is not None else None
        if sampled is not None:
            final, right = sampled.final, sampled.right
        text = compose(knobs, convo.question, hedged, rng, sampled.text if sampled is not None else None)
        if convo.tool_results:
            said = " ".join(f"{r.name} returned {r.content.strip()[:160]}." for r in convo.tool_results[:3])
            text = f"According to the tools: {said} {text}"
        if chat.response_format is not None:
            hints = _hints(chat, text.split("\n####")[0].replace("\n", " "), final)
            text, defect = compose_json(chat.response_format, hints, knobs.invalid_json_rate, rng)
    text, tokens, reason = finish(text, chat.stop, chat.max_tokens)
    probs = None
    if chat.logprobs and knobs.logprobs:
        probs = token_probs(knobs, level, hedged, len(tokens), rng, wrong=right is False)
    return Choice(index, text, tokens, probs, reason, len(tokens), final_answer=final, right=right, defect=defect)


def _tool_calls(index: int, chat: ChatRequest, knobs: ModelKnobs, tools: list[Tool], rng: random.Random) -> Choice:
    hints = _hints(chat, chat.conversation.question, None)
    budget = chat.max_tokens
    calls: list[ToolCall] = []
    defect = None
    used = 0
    for tool in tools:
        value = generate(tool.parameters, rng, hints)
        if knobs.invalid_tool_args_rate and rng.random() < knobs.invalid_tool_args_rate:
            arguments, defect = spoil(value, tool.parameters, tool.validator, rng)
        else:
            arguments = orjson.dumps(value).decode()
        tokens = tokenize(arguments)
        call_id = f"call_{rng.getrandbits(96):024x}"
        if budget is not None and used + TOOL_CALL_OVERHEAD + len(tokens) > budget:
            tokens = tokens[: max(0, budget - used - TOOL_CALL_OVERHEAD)]
            calls.append(ToolCall(call_id, tool.name, tokens))
            used = budget
            return Choice(index, None, [], None, "length", used, tuple(calls), defect=defect or "unparsable")
        calls.append(ToolCall(call_id, tool.name, tokens))
        used += TOOL_CALL_OVERHEAD + len(tokens)
    reason = "function_call" if chat.tools is not None and chat.tools.legacy else "tool_calls"
    return Choice(index, None, [], None, reason, used, tuple(calls), defect=defect)
