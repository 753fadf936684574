"""``python -m modelyard_ingress``: run the ingress with settings from the environment."""

from .app import serve
from .settings import IngressSettings

if __name__ == "__main__":
    serve(IngressSettings())
