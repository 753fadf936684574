"""modelyard dashboard: organisations, usage, routing split, savings and quota warnings as web pages.

It keeps no data: every number is read from the tenant API with the signed-in user's token.
Public entry points: ``create_app(settings)``, ``serve(settings)``, ``DashboardSettings``.
"""

from .app import create_app, serve
from .settings import DashboardSettings

__all__ = ["DashboardSettings", "create_app", "serve"]
