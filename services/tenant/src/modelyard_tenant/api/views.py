"""Stored documents to response bodies."""

from modelyard_events import TIER_LIMITS, Industry, Tier

from ..plans import PRESETS, features_of
from ..schemas import KeyOut, TenantOut


def tenant_view(doc: dict) -> TenantOut:
    tier, industry = Tier(doc["subscription_tier"]), Industry(doc["industry"])
    preset = PRESETS[industry]
    return TenantOut.model_validate(
        {
            **doc,
            "tenant_id": doc["_id"],
            "limits": TIER_LIMITS[tier],
            "features": features_of(tier, industry),
            "industry_preset": {
                "routing_preference": preset.routing_preference,
                "compliance": list(preset.compliance),
                "features": sorted(f.value for f in preset.features),
            },
        }
    )


def key_view(doc: dict) -> KeyOut:
    return KeyOut.model_validate({**doc, "key_id": doc["_id"]})
