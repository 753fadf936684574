"""Webhook signatures (checked with the Standard Webhooks reference library), URLs, the event catalogue
and the retry schedule: pure code."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from modelyard_events import AlertMetric, Change, MonthClosed, TenantAlert, TenantChanged, Tier
from modelyard_hooks import BadUrl, WebhookType, backoff, check_endpoint_url, new_secret, signed_headers, verify, webhook_event
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def test_signatures_verify_with_the_standard_webhooks_library():
    secret = new_secret()
    body = json.dumps({"id": "evt_1", "type": "quota.warning"})
    headers = signed_headers([secret], "evt_1", body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    assert verify(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # another endpoint's secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("warning", "exceeded"), headers)  # a changed body
    assert not verify(secret, {**headers, "webhook-id": "evt_2"}, body)


def test_during_a_rotation_both_secrets_sign():
    old, new = new_secret(), new_secret()
    body = '{"id":"evt_9"}'
    headers = signed_headers([new, old], "evt_9", body)
    assert len(headers["webhook-signature"].split()) == 2
    assert Webhook(old).verify(body, headers) and Webhook(new).verify(body, headers)
    assert not verify(new_secret(), headers, body)


def test_an_old_timestamp_is_refused():
    secret = new_secret()
    headers = signed_headers([secret], "evt_1", "{}", timestamp=int(time.time()) - 3_600)
    assert not verify(secret, headers, "{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify("{}", headers)


@pytest.mark.parametrize(("url", "dev", "ok"), [
    ("https://hooks.example.com/modelyard", False, True),
    ("https://hooks.example.com:8443/x?y=1", False, True),
    ("http://hooks.example.com/x", False, False),
    ("http://localhost:8123/hook", False, False),
    ("http://localhost:8123/hook", True, True),
    ("http://127.0.0.1:8123/hook", True, True),
    ("https://127.0.0.1/hook", False, False),
    ("https://10.0.0.8/hook", False, False),
    ("https://169.254.169.254/latest/meta-data", False, False),
    ("https://user:pw@hooks.example.com/", False, False),
    ("https://hooks.example.com/#frag", False, False),
    ("ftp://hooks.example.com/", False, False),
    ("https://", False, False),
    ("https://[::1/hook", False, False),
    ("https://hooks.example.com:99999/", False, False),
])
def test_endpoint_urls(url, dev, ok):
    if ok:
        assert check_endpoint_url(url, allow_http_localhost=dev) == url
    else:
        with pytest.raises(BadUrl):
            check_endpoint_url(url, allow_http_localhost=dev)


def test_the_catalogue_maps_bus_events_to_webhooks():
    alert = TenantAlert(event_id="a1", tenant_id="t1", time=T0, metric=AlertMetric.API_CALLS_PER_DAY, threshold_pct=80,
                        period="2026-11-26", value=800, limit=1000)
    warning = webhook_event(alert)
    assert warning is not None and warning.type is WebhookType.QUOTA_WARNING and warning.webhook_id == "evt_a1"
    exceeded = webhook_event(alert.model_copy(update={"threshold_pct": 100, "event_id": "a2"}))
    assert exceeded is not None and exceeded.type is WebhookType.QUOTA_EXCEEDED
    assert warning.ordering_key == exceeded.ordering_key == "quota:api_calls_per_day:2026-11-26"
    assert json.loads(warning.body()) == {"id": "evt_a1", "type": "quota.warning", "tenant_id": "t1", "timestamp": "2026-11-26T09:30:00Z",
                                          "data": {"metric": "api_calls_per_day", "threshold_pct": 80, "period": "2026-11-26",
                                                   "value": 800.0, "limit": 1000.0}}
    assert warning.body() == webhook_event(alert).body()  # the same event, the same bytes

    tier = webhook_event(TenantChanged(event_id="c1", tenant_id="t1", time=T0, change=Change.TIER_CHANGED, version=3,
                                       from_tier=Tier.BASIC, to_tier=Tier.PROFESSIONAL))
    assert tier is not None and tier.type is WebhookType.TIER_CHANGED and tier.ordering_key == "tier"
    assert tier.data == {"version": 3, "from_tier": "basic", "to_tier": "professional"}
    key = webhook_event(TenantChanged(tenant_id="t1", change=Change.KEY_REVOKED, key_id="k1"))
    assert key is not None and key.type is WebhookType.KEY_REVOKED and key.ordering_key == "key:k1"
    closed = webhook_event(MonthClosed(tenant_id="t1", month="2026-11", closed_at=T0, currency="usd", base_cents=7500,
                                       overage_cents=0, total_cents=7500))
    assert closed is not None and closed.type is WebhookType.BILLING_MONTH_CLOSED and closed.data["total_cents"] == 7500


def test_the_retry_schedule_doubles_up_to_its_cap():
    assert [backoff(n, 10, 3_600) for n in range(1, 11)] == [10, 20, 40, 80, 160, 320, 640, 1_280, 2_560, 3_600]
    assert backoff(30, 10, 3_600) == 3_600
