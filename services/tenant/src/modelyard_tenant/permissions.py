"""What each role may do inside a tenant it can see (the platform administrator may do everything)."""

from __future__ import annotations

from enum import StrEnum

from modelyard_tenancy import Principal, Role


class Action(StrEnum):
    READ = "read"  # the tenant, its resources, quotas, usage
    WRITE_CONFIG = "write_config"  # agents and roles
    WRITE_WORK = "write_work"  # tickets and documents
    MANAGE_TENANT = "manage_tenant"  # settings, branding, policy, budget, tier; export
    MANAGE_KEYS = "manage_keys"  # create, list, revoke API keys
    ADMINISTER = "administer"  # create, suspend, delete, import, list organisations; statistics


GRANTS: dict[Role, frozenset[Action]] = {
    Role.PLATFORM_ADMIN: frozenset(Action),
    Role.TENANT_ADMIN: frozenset({Action.READ, Action.WRITE_CONFIG, Action.WRITE_WORK, Action.MANAGE_TENANT, Action.MANAGE_KEYS}),
    Role.MEMBER: frozenset({Action.READ}),
    Role.SERVICE: frozenset({Action.READ, Action.WRITE_WORK}),
}


def allowed(principal: Principal, action: Action) -> bool:
    return action in GRANTS[principal.role]
