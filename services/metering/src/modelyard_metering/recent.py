"""The most recent event ids of one partition, in memory of a fixed size.

The de-duplication window is large (hundreds of thousands of ids per partition) and must not make the
process grow with traffic: a dict of id strings costs ~200 bytes per id and grows until the window is
full, which at a modest rate takes hours. Here the whole window is allocated when a partition is first
consumed: a ring of 128-bit digests with their offsets (24 bytes per id) and an open-addressing index
over it (4 bytes per slot, at most half full). Memory is then flat, whatever the traffic.

A 128-bit BLAKE2 digest stands in for the id: two different ids share one with a probability of about
n² / 2¹²⁹ (for n = 10⁶, 10⁻²⁷), far below any other failure the sink can have.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from hashlib import blake2b

_EMPTY = 0


def _digest(event_id: str) -> tuple[int, int]:
    d = blake2b(event_id.encode(), digest_size=16).digest()
    return int.from_bytes(d[:8], "little", signed=True), int.from_bytes(d[8:], "little", signed=True)


class RecentIds:
    """A window of the last ``capacity`` (event id → offset) entries; adding to a full window forgets the oldest."""

    __slots__ = ("capacity", "_hi", "_lo", "_offsets", "_table", "_mask", "_next", "_size")

    def __init__(self, capacity: int, entries: Iterable[tuple[str, int]] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._hi = array("q", bytes(8 * capacity))
        self._lo = array("q", bytes(8 * capacity))
        self._offsets = array("q", bytes(8 * capacity))
        slots = 1 << max(3, (2 * capacity - 1).bit_length())  # a power of two, at least twice the capacity
        self._table = array("i", bytes(4 * slots))  # ring position + 1, or 0 when empty
        self._mask = slots - 1
        self._next = 0  # ring position the next entry goes to
        self._size = 0
        for event_id, offset in entries:
            self.add(event_id, offset)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self.get(event_id) is not None

    def get(self, event_id: str) -> int | None:
        """The offset ``event_id`` was counted at, if it is in the window."""
        hi, lo = _digest(event_id)
        index = self._find(hi, lo)
        return None if index < 0 else self._offsets[self._table[index] - 1]

    def add(self, event_id: str, offset: int) -> None:
        """Remember ``event_id`` at ``offset`` (an id already in the window keeps its first offset)."""
        hi, lo = _digest(event_id)
        if self._find(hi, lo) >= 0:
            return
        position = self._next
        if self._size == self.capacity:
            self._remove(self._hi[position], self._lo[position])
        else:
            self._size += 1
        self._hi[position], self._lo[position], self._offsets[position] = hi, lo, offset
        table, mask = self._table, self._mask
        i = lo & mask
        while table[i] != _EMPTY:
            i = (i + 1) & mask
        table[i] = position + 1
        self._next = (position + 1) % self.capacity

    def oldest_offset(self) -> int | None:
        """Offset of the oldest entry in the window (None when empty)."""
        if self._size == 0:
            return None
        start = self._next if self._size == self.capacity else 0
        return self._offsets[start]

    def _find(self, hi: int, lo: int) -> int:
        table, mask, his, los = self._table, self._mask, self._hi, self._lo
        i = lo & mask
        while (slot := table[i]) != _EMPTY:
            if los[slot - 1] == lo and his[slot - 1] == hi:
                return i
            i = (i + 1) & mask
        return -1

    def _remove(self, hi: int, lo: int) -> None:
        """Delete an entry from the index, shifting later entries of its probe run back (no tombstones)."""
        table, mask, los = self._table, self._mask, self._lo
        i = self._find(hi, lo)
        if i < 0:
            return
        table[i] = _EMPTY
        j = i
        while True:
            j = (j + 1) & mask
            slot = table[j]
            if slot == _EMPTY:
                return
            home = los[slot - 1] & mask
            # Move the entry at j into the hole at i unless its home lies cyclically in (i, j].
            if (i < j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                table[i], table[j] = slot, _EMPTY
                i = j
