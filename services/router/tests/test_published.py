"""Published router models (unit, with an in-memory fake of the model-file store): which model decides, in
which order versions replace each other, and what a damaged file does."""

from __future__ import annotations

import pytest
from modelyard_events import TIER_LIMITS, Industry, RouterModelPublished, RoutingPolicy, TenantSnapshot, Tier
from modelyard_learn import modelfile
from modelyard_router import published
from modelyard_router.learned import LearnedRouter, builtin_path


class MemoryFiles:
    """In-memory ``ModelFiles`` (a unit-test fake)."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    async def put(self, model_id: str, body: bytes, label: str, *, source: str = "operator") -> None:
        self.bodies.setdefault(model_id, body)

    async def get(self, model_id: str) -> bytes | None:
        return self.bodies.get(model_id)


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return {name: modelfile.load(builtin_path(name))[1] for name in ("helpdesk", "mmlu")}


def event(name: str, model_id: str, version: int) -> RouterModelPublished:
    return RouterModelPublished(tenant_id="_platform", name=name, version=version, model_id=model_id,
                                label=f"{name}@{model_id[:12]}", source="operator")


def tenant(router_model: str | None = None) -> TenantSnapshot:
    policy = RoutingPolicy.model_validate({"router_model": router_model}) if router_model else RoutingPolicy()
    return TenantSnapshot(tenant_id="t1", version=1, name="t1", tier=Tier.BASIC, industry=Industry.OTHER,
                          limits=TIER_LIMITS[Tier.BASIC], policy=policy)


def test_a_stored_model_round_trips_by_its_digest_and_a_damaged_one_is_refused(docs):
    model_id, body = published.encode(docs["helpdesk"])
    assert model_id == modelfile.digest(docs["helpdesk"]) and len(body) < 0.8 * len(modelfile.canonical(docs["helpdesk"]))
    assert published.decode(model_id, body) == docs["helpdesk"]
    with pytest.raises(ValueError, match="does not match its digest"):
        published.decode("0" * 64, body)


async def test_published_default_wins_over_the_configured_file_newer_versions_only_and_withdrawal(docs):
    files = MemoryFiles()
    configured = LearnedRouter(docs["helpdesk"], "helpdesk")
    registry = published.ModelRegistry(configured, files)
    assert registry.for_tenant(tenant()) is configured and registry.for_tenant(None) is configured
    ids = {}
    for name, doc in docs.items():
        ids[name], body = published.encode(doc)
        await files.put(ids[name], body, name)

    registry.on_change("default", event("default", ids["mmlu"], version=2))
    await registry.settled()
    assert registry.for_tenant(tenant()).model_id == ids["mmlu"]
    registry.on_change("default", event("default", ids["helpdesk"], version=1))  # older: ignored
    await registry.settled()
    assert registry.for_tenant(tenant()).model_id == ids["mmlu"]

    registry.on_change("support", event("support", ids["helpdesk"], version=1))
    await registry.settled()
    assert registry.for_tenant(tenant("support")).label == f"support@{ids['helpdesk'][:12]}"
    assert registry.for_tenant(tenant("unknown-name")).model_id == ids["mmlu"]  # a name nobody published: default

    registry.on_change("default", None)
    assert registry.for_tenant(tenant()) is configured


async def test_a_model_that_cannot_be_loaded_leaves_the_current_one_serving(docs):
    registry = published.ModelRegistry(None, MemoryFiles())
    registry.on_change("default", event("default", "a" * 64, version=1))  # announced, never stored
    await registry.settled()
    assert registry.for_tenant(tenant()) is None
