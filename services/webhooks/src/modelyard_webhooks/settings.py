from modelyard_core.settings import Settings
from modelyard_hooks import WebhookSettings
from pydantic import Field


class DispatcherSettings(Settings):
    """``MODELYARD_*`` of the webhook dispatcher (delivery behaviour: ``MODELYARD_WEBHOOKS__*``)."""

    group_id: str = "modelyard-webhooks"
    #: Static group membership (a stable id per replica), as for metering.
    group_instance_id: str | None = None
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
