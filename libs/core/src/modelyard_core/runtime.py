"""Process-wide tuning every long-running modelyard process applies once, just before it serves."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

#: The default of every process's ``gc_gen0_threshold`` setting (Python's own default is 700).
DEFAULT_GEN0_THRESHOLD = 20_000


def tune_gc(gen0_threshold: int) -> None:
    """Collect cyclic garbage less often, and never again scan what exists at start-up.

    Python's default (a young-generation collection every 700 net container allocations) made garbage
    collection 7–19% of the CPU samples of the router, the inference workers and the simulator under
    load (py-spy --native): each message allocates hundreds of short-lived objects, and every older-
    generation collection walks the imported modules' objects (pydantic schemas, SDKs) again. Freezing
    start-up objects removes them from every later collection; a higher threshold makes collections
    rarer without keeping garbage longer than a few thousand allocations. ``gen0_threshold`` 0 keeps
    Python's defaults.
    """
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
    log.debug("gc: %d start-up objects frozen, threshold %s", gc.get_freeze_count(), gc.get_threshold())
