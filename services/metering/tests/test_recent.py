"""Unit tests (no servers): the fixed-size window of recent event ids."""

from __future__ import annotations

import random
import tracemalloc
import uuid
from collections import OrderedDict

import pytest
from modelyard_metering.recent import RecentIds


def test_remembers_offsets_and_keeps_the_first_one():
    ids = RecentIds(4)
    ids.add("a", 10)
    ids.add("b", 11)
    ids.add("a", 12)
    assert (ids.get("a"), ids.get("b"), ids.get("c")) == (10, 11, None)
    assert "a" in ids and "c" not in ids and len(ids) == 2


def test_a_full_window_forgets_the_oldest_first():
    ids = RecentIds(3)
    for n, event_id in enumerate("abcde"):
        ids.add(event_id, n)
    assert [ids.get(e) for e in "abcde"] == [None, None, 2, 3, 4]
    assert len(ids) == 3 and ids.oldest_offset() == 2


def test_the_oldest_offset_of_a_window_not_yet_full():
    ids = RecentIds(5)
    assert ids.oldest_offset() is None
    ids.add("x", 7)
    ids.add("y", 9)
    assert ids.oldest_offset() == 7


@pytest.mark.parametrize("capacity", [1, 7, 64, 1000])
def test_agrees_with_a_dictionary_over_a_long_random_stream(capacity):
    # Many evictions through colliding probe runs: the index must never lose or invent an id.
    rng = random.Random(capacity)
    window, reference = RecentIds(capacity), OrderedDict()
    pool = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(capacity * 3)]
    for offset in range(capacity * 20):
        event_id = rng.choice(pool)
        window.add(event_id, offset)
        if event_id not in reference:
            reference[event_id] = offset
            if len(reference) > capacity:
                reference.popitem(last=False)
        probe = rng.choice(pool)
        assert window.get(probe) == reference.get(probe)
    assert len(window) == len(reference)
    assert all(window.get(e) == o for e, o in reference.items())


def test_memory_is_allocated_once_and_does_not_grow_with_traffic():
    tracemalloc.start()
    try:
        ids = RecentIds(20_000)
        allocated = tracemalloc.get_traced_memory()[0]
        for offset in range(100_000):
            ids.add(f"event-{offset}", offset)
        grown = tracemalloc.get_traced_memory()[0] - allocated
    finally:
        tracemalloc.stop()
    assert allocated < 20_000 * 40
    assert grown < 50_000  # nothing per id: only transient objects
    assert len(ids) == 20_000 and ids.get("event-79999") is None and ids.get("event-80000") == 80_000
