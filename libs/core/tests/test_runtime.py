"""Unit tests of the process-wide garbage-collector tuning (no broker, no database)."""

from __future__ import annotations

import gc

import pytest

from modelyard_core.runtime import tune_gc


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold(restore_gc):
    _, gen1, gen2 = gc.get_threshold()
    start_up = [object() for _ in range(3)]  # a container allocated before tuning: frozen with the rest
    tune_gc(20_000)
    assert gc.get_threshold() == (20_000, gen1, gen2)
    assert gc.get_freeze_count() >= len(start_up)
    assert not any(obj is start_up for obj in gc.get_objects())  # frozen: no collection walks it any more


def test_zero_keeps_pythons_defaults(restore_gc):
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    tune_gc(0)
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
