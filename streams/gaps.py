"""Find offsets a consumer skipped within one group generation, so they can be read again.

Right after a rebalance, faust (0.15) can hand an agent a batch, then drop the events fetched
next while it seeks the partitions to their committed offsets, and carry on after them: the
dropped range is never processed, and the commit can later move past it. News is never
compacted and finmon's producers are not transactional, so
within one generation the offsets of a partition arrive consecutively; a jump means skipped
events. The score agent seeks back to the first skipped offset once per jump (a legitimate
gap, such as transaction markers written by some other producer, shows the same jump again
and is then accepted), so the range is read again: at-least-once, never at-most-once.
"""

from __future__ import annotations

from collections.abc import Iterable


class GapGuard:
    """Next expected offset per partition for the current generation; reports jumps once."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self.expected: dict[int, int] = {}
        self.repaired: set[tuple[int, int, int]] = set()

    def check(self, generation: int | None, batch: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """(partition, first skipped offset) for each partition that jumped in this batch.

        ``batch`` holds (partition, offset) pairs in delivery order. A new generation starts
        afresh: partitions may have moved, so nothing before its first batch is expected.
        """
        if generation != self.generation:
            self.generation, self.expected, self.repaired = generation, {}, set()
        jumps: dict[int, int] = {}
        for partition, offset in batch:
            want = self.expected.get(partition)
            if want is not None and offset > want and partition not in jumps:
                key = (partition, want, offset)
                if key not in self.repaired:
                    self.repaired.add(key)
                    jumps[partition] = want
            if partition in jumps:
                continue  # everything from the jump on is read again after the seek
            if want is None or offset >= want:
                self.expected[partition] = offset + 1
        for partition, offset in jumps.items():
            self.expected[partition] = offset
        return sorted(jumps.items())
