"""modelyard tenant service: organisations, tiers and quotas, tenant-scoped resources, API keys, JWT.

Public entry points: ``create_app(settings)``, ``serve(settings)``, ``republish_snapshots(settings)``,
``TenantServiceSettings``; authentication lives in the ``modelyard_tenancy`` library (the ingress uses it too).
"""

from .app import create_app, republish_snapshots, serve
from .settings import TenantServiceSettings

__all__ = ["TenantServiceSettings", "create_app", "republish_snapshots", "serve"]
