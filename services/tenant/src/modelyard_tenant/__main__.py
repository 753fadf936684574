"""``python -m modelyard_tenant``: run the tenant API with settings from the environment."""

from .app import serve
from .settings import TenantServiceSettings

if __name__ == "__main__":
    serve(TenantServiceSettings())
