"""The plugin's structure: server tests are marked by what they use, and every other test that reaches
for the network fails at once. Each case runs pytest (in this process) on a small test file."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

UNMARKED_SERVER_USE = """
import socket

def test_reaches_a_server_without_asking():
    socket.create_connection(("127.0.0.1", 9), timeout=1)

def test_stays_off_the_network():
    assert 1 + 1 == 2
"""

SERVER_FIXTURES = """
def test_on_kafka(kafka):
    pass

def test_on_mongo(mongo_url):
    pass

def test_on_the_stack(stack):
    pass

def test_pure():
    pass
"""

LOOPBACK = """
import socket
import pytest

@pytest.mark.loopback
def test_own_process_over_tcp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", *args)


def test_a_test_that_touches_a_server_unasked_fails_loudly(pytester: pytest.Pytester):
    pytester.makepyfile(test_unmarked=UNMARKED_SERVER_USE)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*SocketBlockedError*"])


def test_tests_that_use_a_server_fixture_are_system_tests(pytester: pytest.Pytester):
    pytester.makepyfile(test_fixtures=SERVER_FIXTURES)
    unit = run(pytester, "-m", "not system and not faults", "--collect-only", "-q")
    unit.stdout.fnmatch_lines(["*test_pure*", "*1/4 tests collected (3 deselected)*"])
    system = run(pytester, "-m", "system", "--collect-only", "-q")
    system.stdout.fnmatch_lines(["*3/4 tests collected (1 deselected)*"])


def test_a_loopback_test_may_open_sockets(pytester: pytest.Pytester):
    pytester.makepyfile(test_loopback=LOOPBACK)
    run(pytester).assert_outcomes(passed=1)
