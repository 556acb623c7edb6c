"""Find offsets the consumer skipped, so they can be read again.

Right after a rebalance, faust (0.15) can hand an agent a batch, then drop the events fetched
next while it seeks the partitions to their committed offsets, and carry on after them, or
start a new generation past its committed offset: the dropped range is never processed, and
the commit can later move past it. News is never compacted and finmon's producers are not
transactional, so the offsets of a partition arrive consecutively from where the group
committed; anything else means skipped events. Two checks find them:

- ``check``: the first batch of a partition in a generation must start at the group's
  committed offset, and each batch must follow the last.
- ``stalled``: a partition that stays quiet while its end offset lies past what was scored has
  lost its tail (nothing after it would ever reveal the jump).

The score agent seeks back to the first skipped offset once per finding (a legitimate gap, such
as transaction markers written by some other producer, shows the same finding again and is then
accepted), so the range is read again: at-least-once, never at-most-once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class GapGuard:
    """Next expected offset per partition for the current generation; reports each finding once."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self.expected: dict[int, int] = {}
        self.repaired: set[tuple[int, int, int]] = set()
        self.quiet: dict[int, int] = {}  # expected offset at the last stall check, per partition
        self.scoring = False  # a batch is being scored: no partition counts as quiet

    def _enter(self, generation: int | None) -> None:
        if generation != self.generation:  # partitions may have moved: what one generation learnt stays in it
            self.generation, self.expected, self.repaired, self.quiet = generation, {}, set(), {}

    def unknown(self, generation: int | None, partitions: Iterable[int]) -> list[int]:
        """Partitions with no expected offset yet in this generation (their start must be looked up)."""
        self._enter(generation)
        return sorted({p for p in partitions if p not in self.expected})

    def start(self, generation: int | None, starts: Mapping[int, int]) -> None:
        """Where reading must begin for partitions new in this generation (the group's committed offsets)."""
        self._enter(generation)
        for partition, offset in starts.items():
            self.expected.setdefault(partition, offset)

    def _finding(self, partition: int, want: int, seen: int) -> bool:
        key = (partition, want, seen)
        if key in self.repaired:
            return False
        self.repaired.add(key)
        return True

    def check(self, generation: int | None, batch: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """(partition, first skipped offset) for each partition that jumped in this batch.

        ``batch`` holds (partition, offset) pairs in delivery order. A partition with no start
        given for this generation expects nothing before its first offset.
        """
        self._enter(generation)
        jumps: dict[int, int] = {}
        for partition, offset in batch:
            want = self.expected.get(partition)
            if want is not None and offset > want and partition not in jumps and self._finding(partition, want, offset):
                jumps[partition] = want
            if partition in jumps:
                continue  # everything from the jump on is read again after the seek
            if want is None or offset >= want:
                self.expected[partition] = offset + 1
        for partition, offset in jumps.items():
            self.expected[partition] = offset
        return sorted(jumps.items())

    def stalled(self, generation: int | None, ends: Mapping[int, int]) -> list[tuple[int, int]]:
        """(partition, first missing offset) for each partition quiet since the last call, short of its end.

        Call it on a timer; ``ends`` holds each assigned partition's end offset. A partition is
        reported once it made no progress over a whole interval without a batch being scored at
        either end of it, and once per (expected, end) pair.
        """
        self._enter(generation)
        if self.scoring:
            self.quiet = {}
            return []
        found = []
        for partition, end in sorted(ends.items()):
            want = self.expected.get(partition)
            if want is None:
                continue
            was, self.quiet[partition] = self.quiet.get(partition), want
            if was == want and want < end and self._finding(partition, want, -end):
                found.append((partition, want))
        return found
