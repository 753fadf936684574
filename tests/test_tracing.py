"""One trace per query across every hop, on the real broker.

The router, both inference pools and metering run in this process (their real `create_app`
composition roots, on the real Kafka and MongoDB-protocol server) so that one in-memory span exporter
sees every span; the model simulator runs as its own process. The test follows a cascaded query:
upstream → router → inference (SLM) → router (escalation) → inference (LLM) → metering.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelyard_core.bus import Bus, Outgoing
from modelyard_core.settings import KafkaSettings, MongoSettings, Topics
from modelyard_events import TIER_LIMITS, Industry, QuerySubmitted, TenantSnapshot, Tier
from modelyard_harness import build_stack, unique_prefix


pytestmark = pytest.mark.system

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracing():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    # The global provider can be set once per process; the bus's proxy tracer follows it.
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another test already installed a global tracer provider")
    return provider


async def test_cascaded_query_is_one_trace_across_services(kafka, mongo_url, tracing, tmp_path):
    from modelyard_inference.service import create_app as inference_app
    from modelyard_inference.settings import InferenceSettings
    from modelyard_metering.service import create_app as metering_app
    from modelyard_metering.settings import MeteringSettings
    from modelyard_router.service import create_app as router_app
    from modelyard_router.settings import RouterSettings

    prefix = unique_prefix("tracing")
    sim = build_stack(kafka, mongo_url, prefix,
                      with_tenant_api=False)
    sim.start("simulator")
    common = dict(kafka=KafkaSettings(bootstrap_servers=kafka, partitions=2), topics=Topics(prefix=prefix),
                  mongo=MongoSettings(url=mongo_url, database=sim.database), log_format="console")
    backend = dict(backend_base_url=sim.simulator_url, request_logprobs=True)
    apps = [
        router_app(RouterSettings(**common)),
        inference_app(InferenceSettings(pool="slm", **common, **backend)),
        inference_app(InferenceSettings(pool="llm", **common, **backend)),
        metering_app(MeteringSettings(**common)),
    ]
    upstream = Bus(RouterSettings(**common), "upstream-test")
    try:
        await upstream.ensure_topics()
        await upstream.broker.start()
        tenant = TenantSnapshot(tenant_id=f"trace-{uuid.uuid4().hex[:6]}", version=1, name="Trace Co",
                                tier=Tier.ENTERPRISE, industry=Industry.OTHER, limits=TIER_LIMITS[Tier.ENTERPRISE])
        await upstream.publish_one(upstream.topics.name("tenant_snapshots"), tenant)
        for app in apps:
            await app.start()

        # Plainly worded, hard underneath: routed to the SLM, whose hedged answer escalates to the LLM.
        query = QuerySubmitted(tenant_id=tenant.tenant_id, query_id=str(uuid.uuid4()),
                               text="Explain why the pivot table totals differ from the ledger export after the migration")
        with trace.get_tracer("upstream").start_as_current_span("upstream submit") as root:
            await upstream.publish([Outgoing(upstream.topics.name("submitted"), query)])
        trace_id = root.get_span_context().trace_id

        def spans_of_trace():
            return [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == trace_id]

        deadline = time.monotonic() + 60
        while not any(s.name.endswith("usage.recorded process") for s in spans_of_trace()) or \
                sum(s.name.endswith("usage.recorded process") for s in spans_of_trace()) < 2:
            assert time.monotonic() < deadline, f"trace incomplete: {[s.name for s in spans_of_trace()]}"
            await asyncio.sleep(0.1)
    finally:
        for app in reversed(apps):
            await app.stop()
        await upstream.broker.stop()
        sim.stop()

    spans = spans_of_trace()
    by_id = {s.context.span_id: s for s in spans}

    def chain(span):
        names = []
        while span is not None:
            names.append(span.name.replace(prefix, ""))
            span = by_id.get(span.parent.span_id) if span.parent else None
        return list(reversed(names))

    usage_spans = [s for s in spans if s.name.endswith("usage.recorded process")]
    chains = sorted((chain(s) for s in usage_spans), key=len)
    # First model call (SLM) and the cascaded one (LLM), each metered, each a descendant of the upstream span.
    assert chains[0] == ["upstream submit", "queries.submitted process", "queries.routed.slm process",
                         "usage.recorded process"]
    assert chains[1] == ["upstream submit", "queries.submitted process", "queries.routed.slm process",
                         "queries.escalations process", "queries.routed.llm process", "usage.recorded process"]
    assert all(s.context.trace_id == trace_id for s in spans)
    assert all(s.attributes.get("modelyard.query_id") == query.query_id for s in spans if s.name != "upstream submit")
