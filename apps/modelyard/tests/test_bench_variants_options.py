"""`modelyard bench pipeline --variants` hands its options to the variant runner (unit test: the runner is
replaced by a function that records what it was given; no stack is started)."""

from __future__ import annotations

import json

import pytest
from modelyard.cli import _register_tool_commands, app
from typer.testing import CliRunner

_register_tool_commands()  # main() registers the tools' commands (bench among them); the test calls app directly


def test_variants_get_the_soak_and_the_phases_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelyard.bench.variants as variants

    seen = {}

    async def record(cfg, names, rounds, console):  # noqa: ANN001 - the runner's own signature
        seen.update(cfg=cfg, names=names, rounds=rounds)
        return {"variants": names}

    monkeypatch.setattr(variants, "run_variants", record)
    result = CliRunner().invoke(app, ["bench", "pipeline", "--variants", "all-lean,separate-openai", "--rounds", "2",
                                      "--rate", "50", "--soak", "30", "--ports", "39200-39299"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"variants": ["all-lean", "separate-openai"]}
    cfg = seen["cfg"]
    assert (cfg.soak_s, cfg.rate, cfg.port_first, cfg.port_last, seen["rounds"]) == (30.0, 50.0, 39200, 39299, 2)


def test_an_unknown_variant_is_refused_by_name() -> None:
    result = CliRunner().invoke(app, ["bench", "pipeline", "--variants", "all-lean,fastest"])
    assert result.exit_code != 0
    assert "--variants takes some of" in result.output


def test_a_variant_may_change_settings_of_its_own_stack() -> None:
    from modelyard.bench.variants import parse_variant

    assert parse_variant("all-lean") == ("all-lean", {})
    assert parse_variant("separate-lean+MODELYARD_SUBMITTED_LINGER_MS=0+MODELYARD_KAFKA__LINGER_MS=2") == (
        "separate-lean", {"MODELYARD_SUBMITTED_LINGER_MS": "0", "MODELYARD_KAFKA__LINGER_MS": "2"})
    with pytest.raises(ValueError, match="not MODELYARD_NAME=VALUE"):
        parse_variant("all-lean+LINGER=0")
    result = CliRunner().invoke(app, ["bench", "pipeline", "--variants", "all-lean+MODELYARD_X"])
    assert result.exit_code != 0
    assert "MODELYARD_NAME=VALUE" in result.output
