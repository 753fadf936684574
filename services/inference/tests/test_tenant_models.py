"""Choosing a tenant's own endpoint (pure; the view is an in-memory stand-in for the compacted topic)."""

from __future__ import annotations

from cryptography.fernet import Fernet
from modelyard_core.secrets import SecretBox
from modelyard_events import (TIER_LIMITS, ComplexityLevel, Industry, ModelClass, QueryRequest, QueryRouted, RoutingDecision,
                              TenantEndpoint, TenantSnapshot, Tier)
from modelyard_inference.settings import InferenceSettings
from modelyard_inference.tenant_models import TenantModels

BOX = SecretBox([Fernet.generate_key().decode()])


class View:
    def __init__(self) -> None:
        self.snapshots: dict[str, TenantSnapshot] = {}

    def get(self, key: str) -> TenantSnapshot | None:
        return self.snapshots.get(key)


def snapshot(tenant_id: str, *endpoints: TenantEndpoint) -> TenantSnapshot:
    return TenantSnapshot(tenant_id=tenant_id, version=1, name=tenant_id, tier=Tier.ENTERPRISE, industry=Industry.TECH,
                          limits=TIER_LIMITS[Tier.ENTERPRISE], endpoints=list(endpoints))


def endpoint(model_class: ModelClass = ModelClass.SLM, *, key: str = "sk-own", url: str = "https://llm.acme.example/v1",
             box: SecretBox = BOX) -> TenantEndpoint:
    return TenantEndpoint(endpoint_id=f"ep-{model_class.value}", model_class=model_class, base_url=url, model="acme-7b",
                          sealed_api_key=box.seal(key), input_usd_per_m=1.0, output_usd_per_m=4.0)


def routed(tenant_id: str, model_class: ModelClass = ModelClass.SLM) -> QueryRouted:
    return QueryRouted(tenant_id=tenant_id, query_id="q1", request=QueryRequest(text="hi"), submitted_at="2026-11-26T09:00:00Z",
                       decision=RoutingDecision(complexity=ComplexityLevel.SIMPLE, score=0, model_class=model_class, model="gpt-4o-mini"))


def test_only_the_tenants_class_goes_to_its_endpoint_with_its_key_and_prices():
    view = View()
    view.snapshots["acme"] = snapshot("acme", endpoint())
    view.snapshots["other"] = snapshot("other")
    models = TenantModels(InferenceSettings(), view, BOX)  # type: ignore[arg-type]
    own = models.for_query(routed("acme"))
    assert own is not None and own.model == "acme-7b" and own.backend is not None
    assert own.backend.settings.backend_api_key == "sk-own" and own.backend.settings.backend_base_url == "https://llm.acme.example/v1"
    assert own.cost(1_000_000, 500_000) == 3.0
    assert models.for_query(routed("acme", ModelClass.LLM)) is None  # no endpoint for that class
    assert models.for_query(routed("other")) is None and models.for_query(routed("nobody")) is None


def test_each_endpoint_has_its_own_backend_rebuilt_when_it_changes():
    view = View()
    view.snapshots["acme"] = snapshot("acme", endpoint())
    view.snapshots["beta"] = snapshot("beta", endpoint(url="https://llm.beta.example/v1").model_copy(update={"endpoint_id": "ep-beta"}))
    models = TenantModels(InferenceSettings(), view, BOX)  # type: ignore[arg-type]
    first = models.for_query(routed("acme"))
    assert models.for_query(routed("acme")) is first  # cached: one client, one circuit breaker per endpoint
    assert models.for_query(routed("beta")).backend is not first.backend  # another tenant: another breaker
    view.snapshots["acme"] = snapshot("acme", endpoint(key="sk-rotated"))
    assert models.for_query(routed("acme")).backend.settings.backend_api_key == "sk-rotated"


def test_a_key_no_master_key_opens_fails_with_a_reason():
    view = View()
    view.snapshots["acme"] = snapshot("acme", endpoint(box=SecretBox([Fernet.generate_key().decode()])))
    own = TenantModels(InferenceSettings(), view, BOX).for_query(routed("acme"))  # type: ignore[arg-type]
    assert own is not None and own.backend is None and "cannot be decrypted" in own.problem


def test_a_tenants_endpoint_is_called_with_the_pools_client_and_its_own_key_and_url():
    from modelyard_inference.clients import LeanClient, SdkClient

    view = View()
    view.snapshots["acme"] = snapshot("acme", endpoint())
    lean = TenantModels(InferenceSettings(_env_file=None, backend_client="lean"), view, BOX).for_query(routed("acme"))  # type: ignore[arg-type]
    assert isinstance(lean.backend.client, LeanClient)
    assert lean.backend.client.url == "https://llm.acme.example/v1/chat/completions"
    assert lean.backend.client.headers["Authorization"] == "Bearer sk-own"
    sdk = TenantModels(InferenceSettings(_env_file=None, backend_client="openai"), view, BOX).for_query(routed("acme"))  # type: ignore[arg-type]
    assert isinstance(sdk.backend.client, SdkClient) and sdk.backend.client.sdk.api_key == "sk-own"
