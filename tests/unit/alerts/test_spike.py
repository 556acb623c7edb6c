"""The detector driven by synthetic window sequences; window end times are the (manual) clock."""

import random
from datetime import UTC, datetime

import pytest

from alerts.records import WindowStats
from alerts.settings import DetectorSettings, preset
from alerts.spike import SpikeDetector

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()


def window(i: int, negative: int, total: int, key: str = "Earnings", headlines: tuple = ()) -> WindowStats:
    start = datetime.fromtimestamp(T0 + 60 * i, UTC).isoformat()
    end = datetime.fromtimestamp(T0 + 60 * (i + 1), UTC).isoformat()
    return WindowStats("topic", key, start, end, negative, total, headlines, ("TSLA",), "m1", T0 + 60 * (i + 1))


def run(detector: SpikeDetector, windows: list[WindowStats]) -> list[dict]:
    return [alert for w in windows for alert in detector.observe(w)]


def steady(start: int, count: int, negative: int = 5, total: int = 20) -> list[WindowStats]:
    return [window(i, negative, total) for i in range(start, start + count)]


def test_a_steady_stream_never_fires() -> None:
    assert run(SpikeDetector(DetectorSettings()), steady(0, 200)) == []


def test_a_real_surge_fires_once_in_its_first_window_and_resolves_once() -> None:
    detector = SpikeDetector(DetectorSettings())
    headlines = tuple({"id": f"n{i}", "title": f"bad {i}", "score": -0.5 - i / 100} for i in range(8))
    sequence = steady(0, 30) + [window(30 + i, 16, 20, headlines=headlines) for i in range(10)] + steady(40, 10)
    alerts = run(detector, sequence)
    assert [(a.status, a.window.start) for a in alerts] == [
        ("firing", sequence[30].window_start),
        ("resolved", sequence[41].window_start),
    ]
    firing, resolved = alerts
    assert firing.alert_id == resolved.alert_id
    assert firing.observed_negative_share == 0.8
    assert 0.2 < firing.baseline_negative_share < 0.3
    assert firing.p_value < 0.01 and firing.reason == "negative_share"
    assert [h.id for h in firing.headlines] == ["n7", "n6", "n5", "n4", "n3"]
    assert firing.tickers == ("TSLA",) and firing.model_version == "m1"


def test_a_small_blip_under_min_count_does_not_fire() -> None:
    detector = SpikeDetector(DetectorSettings(min_count=10))
    assert run(detector, [*steady(0, 20), window(20, 3, 3), *steady(21, 5)]) == []


def test_a_new_key_uses_the_prior() -> None:
    detector = SpikeDetector(DetectorSettings(prior_share=0.25, warmup_windows=0))
    [alert] = detector.observe(window(0, 15, 20, key="Brand new"))
    assert alert.baseline_negative_share == 0.25
    quiet = SpikeDetector(DetectorSettings(prior_share=0.25, warmup_windows=0))
    assert quiet.observe(window(0, 6, 20, key="Brand new")) == []


def test_a_new_key_that_is_always_negative_learns_its_level_instead_of_firing() -> None:
    detector = SpikeDetector(DetectorSettings(prior_share=0.25, prior_documents=10, warmup_windows=3))
    assert run(detector, [window(i, 18, 20, key="Legal") for i in range(3)]) == []
    # after the warm-up the baseline is the key's own pooled level (54 of 60), the prior worth 10 stories
    assert detector.state("topic", "Legal").baseline_share == pytest.approx((0.25 * 10 + 54) / 70)
    assert run(detector, [window(i, 18, 20, key="Legal") for i in range(3, 40)]) == []
    assert detector.state("topic", "Legal").baseline_share > 0.8
    assert detector.observe(window(40, 20, 20, key="Legal")) == []


def test_a_busy_key_is_judged_against_its_own_level_after_the_warm_up_not_the_prior() -> None:
    """The demo's first alert: a topic at 60% negative with 50 stories a window fired on the first window
    after warm-up while its baseline was still weighed towards the 25% prior."""
    detector = SpikeDetector(DetectorSettings(warmup_windows=3))
    rng = random.Random(3)
    windows = [window(i, sum(rng.random() < 0.6 for _ in range(50)), 50, key="Legal") for i in range(60)]
    assert run(detector, windows) == []


def test_a_key_that_goes_quiet_resolves_on_empty_windows() -> None:
    detector = SpikeDetector(DetectorSettings(exit_windows=2))
    alerts = run(detector, [*steady(0, 30), window(30, 16, 20), window(31, 0, 0), window(32, 0, 0)])
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[1].count == 0


def test_a_lasting_new_level_resolves_once_instead_of_firing_forever() -> None:
    detector = SpikeDetector(DetectorSettings())
    alerts = run(detector, [*steady(0, 30), *(window(30 + i, 18, 20) for i in range(150))])
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[1].window.start > alerts[0].window.start


def test_cooldown_blocks_an_immediate_refire() -> None:
    detector = SpikeDetector(DetectorSettings(cooldown_seconds=600, exit_windows=1))
    sequence = [*steady(0, 30), window(30, 16, 20), window(31, 5, 20), window(32, 16, 20)]
    assert [a.status for a in run(detector, sequence)] == ["firing", "resolved"]
    later = SpikeDetector(DetectorSettings(cooldown_seconds=60, exit_windows=1))
    assert [a.status for a in run(later, [*sequence[:32], window(33, 16, 20)])] == ["firing", "resolved", "firing"]


def test_a_negative_volume_surge_fires_even_when_the_share_moves_less() -> None:
    detector = SpikeDetector(DetectorSettings())
    quiet = [window(i, 2, 8) for i in range(40)]
    [alert] = run(detector, [*quiet, window(40, 30, 100)])
    assert alert.reason == "negative_volume"
    assert alert.observed_negative_share == 0.3


def test_presets_map_to_parameters_and_accept_overrides() -> None:
    assert preset("low").min_count > preset("medium").min_count > preset("high").min_count
    assert preset("low").alpha < preset("high").alpha
    assert preset("high", min_count=50).min_count == 50


def test_false_positive_rate_on_a_long_stationary_stream_is_below_alpha() -> None:
    rng = random.Random(42)
    settings = DetectorSettings(alpha=0.01, cooldown_seconds=0, exit_windows=1)
    detector = SpikeDetector(settings)
    fired = 0
    for i in range(10_000):
        total = max(0, int(rng.gauss(40, 6)))
        negative = sum(rng.random() < 0.25 for _ in range(total))
        fired += sum(a.status == "firing" for a in detector.observe(window(i, negative, total)))
    assert fired / 10_000 < settings.alpha


def test_state_in_the_store_survives_a_new_detector_and_repeated_windows_are_ignored() -> None:
    store: dict = {}
    first = SpikeDetector(DetectorSettings(), store)
    sequence = [*steady(0, 30), window(30, 16, 20)]
    assert [a.status for a in run(first, sequence)] == ["firing"]
    restarted = SpikeDetector(DetectorSettings(), store)
    assert restarted.observe(window(30, 16, 20)) == []  # the same final window again
    assert run(restarted, [window(31, 16, 20)]) == []  # still the same alert
    resolved = run(restarted, [window(32, 5, 20), window(33, 5, 20)])
    assert [a.status for a in resolved] == ["resolved"]
    assert resolved[0].alert_id == run(SpikeDetector(DetectorSettings()), sequence)[0].alert_id


def test_a_key_with_a_high_usual_share_resolves_when_its_windows_are_no_longer_significant() -> None:
    """The demo's Legal / Regulation topic: usually 60% negative, it fired on a surge to 95% and then
    stayed firing at 65-75%, never below 60% x exit_lift, though nothing was unusual any more."""
    detector = SpikeDetector(DetectorSettings(exit_windows=2))
    usual = [window(i, 9, 15, key="Legal") for i in range(10)]
    surge = [window(10 + i, 19, 20, key="Legal") for i in range(3)]
    after = [window(13 + i, 11, 15, key="Legal") for i in range(2)]  # 73%: above 60% x 1.2, p ~ 0.2
    assert [a.status for a in run(detector, usual + surge + after)] == ["firing", "resolved"]
