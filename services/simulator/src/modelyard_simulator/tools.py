"""Tools: validating ``tools`` / ``tool_choice`` / ``parallel_tool_calls`` (and the deprecated ``functions`` /
``function_call``) like OpenAI, and deciding which functions a model calls.

Which calls: ``tool_choice`` "none" never calls; a named function is called; "required" calls the tools
that match the question best (at least one); "auto" calls the tools whose name or description shares a
content word with the question, and answers in text when none does or when the conversation ends with
tool results. ``parallel_tool_calls`` (default true) allows up to three calls in one answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from modelyard_simulator.errors import ApiError, array_too_long, invalid_type, invalid_value, missing, missing_or_wrong
from modelyard_simulator.schema_values import SchemaError, validator_for
from modelyard_simulator.words import STOPWORDS

MAX_TOOLS = 128
MAX_PARALLEL_CALLS = 3
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_WORDS = re.compile(r"[a-z]{4,}")


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    parameters: dict[str, Any] | None
    validator: Draft202012Validator | None
    words: frozenset[str]


@dataclass(frozen=True, slots=True)
class ToolRequest:
    tools: tuple[Tool, ...]
    #: "none", "auto", "required" or the name of the function to call
    choice: str
    parallel: bool
    #: the deprecated ``functions`` API: answer with ``message.function_call`` (one call at most)
    legacy: bool = False

    def tool(self, name: str) -> Tool:
        return next(t for t in self.tools if t.name == name)


def _words(text: str) -> frozenset[str]:
    """Content words, crudely singular: what a question and a tool description can have in common."""
    words = _WORDS.findall(text.replace("_", " ").replace("-", " ").lower())
    return frozenset(w.removesuffix("s") for w in words if w not in STOPWORDS)


def _function(spec: Any, param: str, kind: str) -> Tool:
    """One function definition (``tools[i].function`` or ``functions[i]``)."""
    if not isinstance(spec, dict):
        raise missing_or_wrong(param, "an object", spec)
    name = spec.get("name")
    if not isinstance(name, str):
        raise missing_or_wrong(f"{param}.name", "a string", name)
    if not _NAME.match(name):
        raise ApiError(
            400,
            f"Invalid '{param}.name': string does not match pattern. Expected a string that matches the pattern "
            "'^[a-zA-Z0-9_-]+$' (at most 64 characters).",
            param=f"{param}.name",
            code="invalid_value",
        )
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise invalid_type(f"{param}.description", "a string", description)
    parameters = spec.get("parameters")
    strict = spec.get("strict") is True
    validator = None
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise invalid_type(f"{param}.parameters", "an object", parameters)
        try:
            validator = validator_for(parameters, strict=strict, root_object=True)
        except SchemaError as exc:
            raise ApiError(
                400,
                f"Invalid schema for {kind} '{name}': {exc}",
                param=f"{param}.parameters",
                code="invalid_function_parameters",
            ) from None
    return Tool(name, parameters, validator, _words(f"{name} {description}"))


def _choice(value: Any, names: set[str], param: str, *, legacy: bool) -> str:
    if value is None:
        return "auto"
    if isinstance(value, str):
        allowed = ("none", "auto") if legacy else ("none", "auto", "required")
        if value not in allowed:
            raise invalid_value(param, f"expected one of {', '.join(repr(a) for a in allowed)} or a named function.")
        return value
    if not isinstance(value, dict):
        raise invalid_type(param, "a string or an object", value)
    named = value if legacy else value.get("function")
    if not legacy and value.get("type") != "function":
        raise invalid_value(f"{param}.type", f"expected 'function', got {value.get('type')!r}.")
    name = named.get("name") if isinstance(named, dict) else None
    if not isinstance(name, str):
        raise missing(f"{param}.name" if legacy else f"{param}.function.name")
    if name not in names:
        raise invalid_value(param, f"no function named '{name}' is among the offered tools.")
    return name


def parse_tools(body: dict[str, Any]) -> ToolRequest | None:
    tools, functions = body.get("tools"), body.get("functions")
    if tools is not None and functions is not None:
        raise invalid_value("functions", "use either 'tools' or the deprecated 'functions', not both.")
    if functions is not None:
        return _parse_functions(body, functions)
    if tools is None:
        for name in ("tool_choice", "parallel_tool_calls"):
            if body.get(name) is not None:
                raise invalid_value(name, f"'{name}' is only allowed when 'tools' are specified.")
        return None
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    if not tools:
        raise ApiError(
            400,
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="tools",
            code="empty_array",
        )
    if len(tools) > MAX_TOOLS:
        raise array_too_long("tools", len(tools), MAX_TOOLS)
    parsed = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_type(f"tools[{i}]", "an object", tool)
        if tool.get("type") != "function":
            raise invalid_value(f"tools[{i}].type", f"expected 'function', got {tool.get('type')!r}.")
        parsed.append(_function(tool.get("function"), f"tools[{i}].function", "function"))
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid_type("parallel_tool_calls", "a boolean", parallel)
    choice = _choice(body.get("tool_choice"), {t.name for t in parsed}, "tool_choice", legacy=False)
    return ToolRequest(tuple(parsed), choice, parallel is not False)


def _parse_functions(body: dict[str, Any], functions: Any) -> ToolRequest:
    if not isinstance(functions, list) or not functions:
        raise invalid_type("functions", "a non-empty array", functions)
    if len(functions) > MAX_TOOLS:
        raise array_too_long("functions", len(functions), MAX_TOOLS)
    parsed = tuple(_function(spec, f"functions[{i}]", "function") for i, spec in enumerate(functions))
    choice = _choice(body.get("function_call"), {t.name for t in parsed}, "function_call", legacy=True)
    return ToolRequest(parsed, choice, parallel=False, legacy=True)


def plan_calls(request: ToolRequest, question: str, after_tool_results: bool) -> list[Tool]:
    """The functions a model calls for ``question`` (empty: it answers in text)."""
    choice = request.choice
    if choice == "none" or (choice == "auto" and after_tool_results):
        return []
    if choice not in ("auto", "required"):
        return [request.tool(choice)]
    asked = _words(question)
    scored = sorted(
        ((len(tool.words & asked), -i, tool) for i, tool in enumerate(request.tools)),
        key=lambda entry: entry[:2],
        reverse=True,
    )
    matching = [tool for score, _, tool in scored if score > 0]
    if not matching:
        return [scored[0][2]] if choice == "required" else []
    return matching[: MAX_PARALLEL_CALLS if request.parallel else 1]
