"""The usage read model: the documents metering writes and the queries that read them.

Metering (the one writer) folds usage events into these collections; the tenant API, the CLI and the
demo (and billing and the dashboard) read them with ``modelyard_usage.read``. Neither side
imports the other: both import this package.
"""

from . import read
from .documents import (
    AGENTS,
    COLLECTIONS,
    DAILY,
    DOC_COUNTERS,
    MICROS_PER_MS,
    MONTHLY,
    NANO_PER_USD,
    TENANT_DAILY,
    add_counters,
    counters_of,
    micros,
    nano_usd,
    to_counters,
)

__all__ = [
    "AGENTS",
    "COLLECTIONS",
    "DAILY",
    "DOC_COUNTERS",
    "MICROS_PER_MS",
    "MONTHLY",
    "NANO_PER_USD",
    "TENANT_DAILY",
    "add_counters",
    "counters_of",
    "micros",
    "nano_usd",
    "read",
    "to_counters",
]
