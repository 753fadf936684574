"""The Stripe meter events of a closed report: their values, identifiers and the recorded request format.

(Pure: the report is built in memory; the database side of the export is in the tenant service's
billing tests, on the real server.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from modelyard_billing import Month, PriceList, TierChange
from modelyard_billing.export import Exporter, identifier, stripe_params, stripe_request
from modelyard_billing.prices import BillingSettings
from modelyard_billing.report import Adjustment, UsageDelta, build_report
from modelyard_events import Tier

RECORDED = Path(__file__).parent / "data" / "stripe_meter_event_request.http"
NAMES = BillingSettings().meters


def november_report():
    docs = [{"tenant_id": "t-acme", "day": date(2026, 11, d).isoformat(), "model": "gpt-4o-mini", "model_class": "slm",
             "queries": 400, "calls": 400, "input_tokens": 900_000, "output_tokens": 300_000} for d in (2, 3)]
    return build_report(tenant_id="t-acme", organization_name="Acme", month=Month(2026, 11),
                        history=[TierChange(Tier.BASIC, datetime(2026, 10, 1, tzinfo=UTC))], usage_docs=docs,
                        prices=PriceList(), now=datetime(2026, 12, 1, tzinfo=UTC))


def test_one_event_per_meter_and_line_with_identifiers_derived_from_the_usage_id():
    report = november_report()
    adjustment = Adjustment(adjustment_id="t-acme|2026-11|1", usage=UsageDelta(queries=2, calls=2, tokens=1_000, billable_tokens=1_000),
                            overage_tokens=1_000, amount_cents=0)
    exporter = Exporter(None, NAMES)  # type: ignore[arg-type] - lines() reads no database
    events = exporter.lines(report, [adjustment], "cus_NciAYcXfLnqBoz")
    assert [(e.line, e.meter, e.value) for e in events] == [
        ("report", "overage_tokens", 400_000), ("report", "tokens", 2_400_000), ("report", "queries", 800),
        ("t-acme|2026-11|1", "overage_tokens", 1_000), ("t-acme|2026-11|1", "tokens", 1_000), ("t-acme|2026-11|1", "queries", 2)]
    assert len({e.identifier for e in events}) == 6 and all(len(e.identifier) <= 100 for e in events)
    # The same line always gets the same identifier: the usage document id (tenant|month), meter and line.
    assert events[0].identifier == identifier("t-acme|2026-11", "overage_tokens", "report")
    assert [e.identifier for e in exporter.lines(november_report(), [adjustment], "cus_NciAYcXfLnqBoz")] == [e.identifier for e in events]
    assert {e.timestamp for e in events} == {int(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp())}
    assert {e.event_name for e in events} == {"modelyard_overage_tokens", "modelyard_tokens", "modelyard_queries"}


def test_a_decrease_cannot_be_sent_as_a_meter_event():
    bad = Adjustment(adjustment_id="t-acme|2026-11|1", usage=UsageDelta(queries=-1), overage_tokens=0, amount_cents=0)
    with pytest.raises(ValueError, match="queries decreased"):
        Exporter(None, NAMES).lines(november_report(), [bad], "cus_1")  # type: ignore[arg-type]


def test_the_request_matches_the_recorded_stripe_request():
    event = Exporter(None, NAMES).lines(november_report(), [], "cus_NciAYcXfLnqBoz")[0]  # type: ignore[arg-type]
    request = stripe_request(event)
    head, body = RECORDED.read_text().split("\n\n", 1)
    request_line, *header_lines = head.splitlines()
    assert f"{request.method} {request.url}" == request_line
    assert request.headers == dict(line.split(": ", 1) for line in header_lines)
    assert request.body == body.strip()
    # Stripe's parameter names (POST /v1/billing/meter_events), nothing else.
    assert dict(parse_qsl(request.body)) == {
        "event_name": "modelyard_overage_tokens", "identifier": event.identifier, "timestamp": "1796083199",
        "payload[stripe_customer_id]": "cus_NciAYcXfLnqBoz", "payload[value]": "400000"}
    assert stripe_params(event) == {"event_name": "modelyard_overage_tokens", "identifier": event.identifier,
                                    "timestamp": 1796083199,
                                    "payload": {"stripe_customer_id": "cus_NciAYcXfLnqBoz", "value": "400000"}}
