"""`modelyard stats` and `modelyard tail metering` read what the metering service wrote (real Kafka,
real MongoDB protocol, metering as its own process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from modelyard_harness import Stack, isolated_stack, produce_raw, unique_prefix
from modelyard_harness.usage import expected_totals, stored_totals, synthetic_usage
from modelyard_usage import TENANT_DAILY
from pymongo import AsyncMongoClient
from typer.testing import CliRunner

from modelyard.cli import _register_tool_commands, app


@pytest.fixture(scope="module")
def metering(kafka: str, mongo_url: str) -> Iterator[Stack]:
    s = isolated_stack(kafka, mongo_url, unique_prefix("commands"))
    s.add("metering", ["metering"], "/readyz", MODELYARD_FLUSH_MS="50")
    s.start("metering")
    try:
        yield s
    finally:
        s.stop()


async def test_stats_and_tail_commands_read_what_metering_wrote(metering: Stack):
    tenants = [f"cli-{i}-{metering.prefix.strip('.')}" for i in range(2)]
    events = synthetic_usage(300, tenants, seed=6)
    await produce_raw(metering.kafka, metering.topic("usage.recorded"),
                      [(e.tenant_id.encode(), e.model_dump_json().encode()) for e in events])
    expected = expected_totals(events)
    mongo = AsyncMongoClient(metering.mongo_url, tz_aware=True)
    try:
        calls = sum(t["calls"] for t in expected.values())
        async with asyncio.timeout(60):
            while sum(t["calls"] for t in (await stored_totals(mongo[metering.database], tenants, TENANT_DAILY)).values()) < calls:
                await asyncio.sleep(0.1)
    finally:
        await mongo.close()

    if not any(g.name == "tail" for g in app.registered_groups):
        _register_tool_commands()
    env = {**metering.env(), "COLUMNS": "250"}
    runner = CliRunner()

    stats = await asyncio.to_thread(runner.invoke, app, ["stats", "--tenant", tenants[0], "--days", "2"], env=env)
    assert stats.exit_code == 0, stats.output
    assert f"{expected[tenants[0]]['calls']:,}" in stats.output and "gpt-4o-mini" in stats.output

    overview = await asyncio.to_thread(runner.invoke, app, ["stats"], env=env)
    assert overview.exit_code == 0, overview.output
    assert tenants[0] in overview.output and tenants[1] in overview.output

    # Each tenant-day got at least one message (more if its events spanned several flushes).
    tail = await asyncio.to_thread(runner.invoke, app, ["tail", "metering", "--from-beginning", "--max", "2"], env=env)
    assert tail.exit_code == 0, tail.output
    assert "metering.usage: 2 messages" in tail.output and "+calls" in tail.output
