"""modelyard ingress: an OpenAI-compatible HTTP endpoint over the bus.

Public entry points: ``create_app(settings)``, ``serve(settings)``, ``IngressSettings``. Its benchmark,
``modelyard bench http``, lives with the other benchmarks in ``apps/modelyard`` (``modelyard.bench.http``).
"""

from .app import create_app, serve
from .settings import IngressSettings

__all__ = ["IngressSettings", "create_app", "serve"]
