"""HTTP routes of the tenant API (FastAPI routers; wiring in ``modelyard_tenant.app``)."""
