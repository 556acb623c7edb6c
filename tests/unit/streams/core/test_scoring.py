from datetime import UTC, datetime, timedelta

from streams.core.records import NewsDocument
from streams.core.scoring import message_time

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def doc(published: datetime) -> NewsDocument:
    return NewsDocument("a", published, "test", "title", "")


def test_a_scored_record_is_stamped_with_its_published_time_when_a_broker_would_keep_it() -> None:
    now = NOW.timestamp()
    recent = NOW - timedelta(hours=3)
    assert message_time(doc(recent), now) == recent.timestamp()
    assert message_time(doc(NOW + timedelta(minutes=4)), now) == (NOW + timedelta(minutes=4)).timestamp()


def test_far_future_and_far_past_times_are_stamped_with_the_scoring_time() -> None:
    now = NOW.timestamp()
    assert message_time(doc(datetime(2999, 12, 31, tzinfo=UTC)), now) == now  # a broker refuses it
    assert message_time(doc(datetime(1970, 1, 1, tzinfo=UTC)), now) == now  # retention would delete it
