from streams.gaps import GapGuard


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
