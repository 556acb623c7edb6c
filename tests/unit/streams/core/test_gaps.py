from streams.core.gaps import GapGuard


def test_consecutive_offsets_and_redelivered_ones_are_not_gaps() -> None:
    guard = GapGuard()
    assert guard.check(1, [(0, 5), (1, 9), (0, 6), (1, 10)]) == []
    assert guard.check(1, [(0, 7), (0, 8), (1, 11)]) == []
    assert guard.check(1, [(0, 3), (0, 4)]) == []  # re-delivered after a seek back: not a gap


def test_a_skipped_range_is_reported_once_from_its_first_offset() -> None:
    guard = GapGuard()
    assert guard.check(2, [(0, 55), (0, 56), (1, 36), (1, 37)]) == []
    assert guard.check(2, [(1, 42), (0, 57), (0, 61), (0, 62)]) == [(0, 58), (1, 38)]
    # read again from the first skipped offset: accepted and followed
    assert guard.check(2, [(0, 58), (0, 59), (0, 60), (0, 61), (1, 38)]) == []
    assert guard.expected == {0: 62, 1: 39}


def test_the_same_jump_seen_again_after_the_seek_is_a_real_gap_and_accepted() -> None:
    guard = GapGuard()
    guard.check(1, [(0, 10)])
    assert guard.check(1, [(0, 13)]) == [(0, 11)]
    assert guard.check(1, [(0, 13), (0, 14)]) == []  # offsets 11 and 12 do not exist
    assert guard.expected == {0: 15}


def test_a_new_generation_starts_afresh() -> None:
    guard = GapGuard()
    guard.check(1, [(0, 10)])
    assert guard.check(1, [(0, 13)]) == [(0, 11)]
    assert guard.check(2, [(0, 40)]) == []  # another worker processed 11..39 in between
    assert guard.repaired == set() and guard.expected == {0: 41}  # what one generation learnt stays in it


def test_the_first_batch_of_a_generation_must_start_at_the_committed_offset() -> None:
    guard = GapGuard()
    assert guard.unknown(3, [0, 1, 0]) == [0, 1]
    guard.start(3, {0: 20, 1: 7})
    assert guard.unknown(3, [0, 1, 2]) == [2]
    assert guard.check(3, [(0, 25), (1, 7), (1, 8)]) == [(0, 20)]  # 20..24 were dropped before the agent saw them
    assert guard.expected == {0: 20, 1: 9}
    guard.start(3, {0: 99})  # a start never overrides what this generation has seen
    assert guard.expected[0] == 20


def test_a_quiet_partition_short_of_its_end_is_reported_once() -> None:
    guard = GapGuard()
    guard.start(1, {0: 10, 1: 4})
    assert guard.stalled(1, {0: 30, 1: 4}) == []  # the first look only starts the interval
    assert guard.stalled(1, {0: 30, 1: 4}) == [(0, 10)]  # partition 1 is at its end: nothing is missing
    assert guard.stalled(1, {0: 30, 1: 4}) == []  # the same finding again is accepted (transaction markers)
    assert guard.check(1, [(0, 10), (0, 11)]) == []
    assert guard.stalled(1, {0: 30}) == []  # progress since the last look
    assert guard.stalled(1, {0: 30}) == [(0, 12)]


def test_no_partition_is_quiet_while_a_batch_is_being_scored() -> None:
    guard = GapGuard()
    guard.start(1, {0: 10})
    guard.stalled(1, {0: 30})
    guard.scoring = True
    assert guard.stalled(1, {0: 30}) == []
    guard.scoring = False
    assert guard.stalled(1, {0: 30}) == []  # a batch ended inside the interval: it starts again
    assert guard.stalled(1, {0: 30}) == [(0, 10)]
    assert guard.stalled(2, {0: 30}) == []  # a new generation knows nothing of partition 0 yet
