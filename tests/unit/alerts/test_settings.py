"""Alert settings that cannot work are refused when they are read."""

import pytest

from alerts.settings import AlertSettings


def test_two_webhook_targets_cannot_share_delivery_state() -> None:
    with pytest.raises(ValueError, match="would share delivery state"):
        AlertSettings(
            targets=[{"url": "https://a.example/x", "name": "Desk A"}, {"url": "https://b.example", "name": "Desk/A"}]
        )
    with pytest.raises(ValueError, match="would share delivery state"):
        AlertSettings(targets=[{"url": "https://a.example/x"}, {"url": "https://a.example/x"}])
    both = AlertSettings(targets=[{"url": "https://a.example/x"}, {"url": "https://a.example/y"}])
    assert len({t.key for t in both.targets}) == 2
