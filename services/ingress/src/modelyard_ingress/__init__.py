"""modelyard ingress: an OpenAI-compatible HTTP endpoint over the bus.

Public entry points: ``create_app(settings)``, ``serve(settings)``, ``IngressSettings``, and
``modelyard_ingress.bench.run_http_bench`` (``modelyard bench http``).
"""

from .app import create_app, serve
from .settings import IngressSettings

__all__ = ["IngressSettings", "create_app", "serve"]
