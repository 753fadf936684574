"""Drive a modelyard deployment from outside, for the tests (through ``modelyard_testing``) and the
benchmarks (``apps/modelyard``): service processes and whole stacks, raw records on topics, topic end
offsets, clean-up of a run, process CPU and memory (psutil), synthetic usage.

Production code never imports this package (the import-direction test holds it to that).
"""

from .kafka import EndOffsets, TopicReader, drop_database, drop_run, drop_topics, produce_raw
from .processes import Process, cpu_seconds, free_port, http_get, http_ok, modelyard_command, rss_mb, wait_until
from .secured import SecuredKafka, secured_stack
from .stack import ADMIN, Stack, build_stack, create_tenant, isolated_stack, outcomes_by_query, publish_queries, unique_prefix

__all__ = [
    "ADMIN",
    "EndOffsets",
    "Process",
    "SecuredKafka",
    "Stack",
    "TopicReader",
    "build_stack",
    "cpu_seconds",
    "create_tenant",
    "drop_database",
    "drop_run",
    "drop_topics",
    "free_port",
    "http_get",
    "http_ok",
    "isolated_stack",
    "modelyard_command",
    "outcomes_by_query",
    "produce_raw",
    "publish_queries",
    "rss_mb",
    "secured_stack",
    "unique_prefix",
    "wait_until",
]
