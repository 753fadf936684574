"""The webhook dispatcher: tenant events from the bus to tenants' endpoints, signed, retried, parked."""
