"""Negative-news spike detection per key, with a learned baseline, hysteresis and cooldown.

Fed one closed window at a time, in window order per key. A window fires when it has enough
documents, a one-sided binomial test puts its negative share above the key's baseline (p < alpha)
and the lift is material; or when its negative count surges far above its own baseline (Poisson).
A firing key stays one alert until its share is calm for ``exit_windows`` windows, then resolves
once and cannot fire again within the cooldown. A new key only learns for ``warmup_windows``
windows: its baseline is then the pooled share of all its stories so far, with the prior worth
``prior_documents`` stories (so a busy key's own level, not the prior, is what it is judged against
after the warm-up); from then on an exponentially weighted average. While firing, the baseline
learns at a fraction of its weight, so a lasting new level resolves in time rather than firing forever.
A window with no stories is calm: the worker reports a few of them after a key's last story, so an
alert on a key that goes quiet resolves.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from alerts.records import Alert, AlertWindow, Headline, KeyState, WindowStats, alert_id
from alerts.settings import DetectorSettings
from alerts.stats import binomial_sf, poisson_sf

MAX_HEADLINES = 5
MAX_TICKERS = 5
SHARE_BOUNDS = (0.01, 0.95)


class SpikeDetector:
    """Detector over many keys; returns the alert records each window produces.

    Per-key state lives in ``store`` (a dict, or a changelogged table in the worker), so
    baselines, firing alerts and cooldowns survive a restart. A window already judged for a key
    (a final record repeated after a restart) is ignored.
    """

    def __init__(self, settings: DetectorSettings, store: MutableMapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.store: MutableMapping[str, Any] = store if store is not None else {}

    def state(self, scope: str, key: str) -> KeyState:
        found = self.store.get(f"{scope}|{key}")
        if found is None:
            return KeyState(self.settings.prior_share, self.settings.prior_count)
        return KeyState.from_dict(found)

    def observe(self, stats: WindowStats) -> list[Alert]:
        state = self.state(stats.scope, stats.key)
        if stats.window_start <= state.last_window:
            return []
        state.last_window = stats.window_start
        produced = self._judge(state, stats)
        self.store[f"{stats.scope}|{stats.key}"] = state.as_dict()
        return produced

    def _judge(self, state: KeyState, stats: WindowStats) -> list[Alert]:
        if state.firing is not None:
            produced = self._while_firing(state, stats)
            self._learn(state, stats, self.settings.firing_learning)
            return produced
        decision = self._test(state, stats) if state.windows >= self.settings.warmup_windows else None
        if decision is not None and stats.end_seconds > state.cooldown_until:
            firing = self._alert(state, stats, "firing", decision)
            state.firing, state.calm = firing.model_dump(mode="json"), 0
            return [firing]
        self._learn(state, stats)
        return []

    def _test(self, state: KeyState, stats: WindowStats) -> dict[str, Any] | None:
        s = self.settings
        share_p = binomial_sf(stats.negative, stats.total, state.baseline_share)
        if stats.total >= s.min_count and share_p < s.alpha and stats.share >= state.baseline_share * s.min_lift:
            return {"reason": "negative_share", "p_value": share_p}
        if state.windows < 2 * s.warmup_windows:
            return None  # counts vary more than shares: the volume baseline needs a longer history
        expected = max(state.baseline_negative, 1.0)
        volume_p = poisson_sf(stats.negative, expected)
        if stats.negative >= s.min_count and stats.negative >= s.volume_factor * expected and volume_p < s.alpha:
            return {"reason": "negative_volume", "p_value": volume_p}
        return None

    def _while_firing(self, state: KeyState, stats: WindowStats) -> list[Alert]:
        s = self.settings
        calm = (
            stats.total == 0
            or stats.share < state.baseline_share * s.exit_lift
            or binomial_sf(stats.negative, stats.total, state.baseline_share) >= s.exit_alpha
        )
        state.calm = state.calm + 1 if calm else 0
        if state.calm < s.exit_windows:
            return []
        firing = Alert.model_validate(state.firing)
        ended = self._alert(state, stats, "resolved", {"reason": firing.reason, "p_value": firing.p_value})
        resolved = ended.model_copy(update={"alert_id": firing.alert_id, "started_at": firing.window.start})
        state.firing = None
        state.calm = 0
        state.cooldown_until = stats.end_seconds + s.cooldown_seconds
        return [resolved]

    def _learn(self, state: KeyState, stats: WindowStats, scale: float = 1.0) -> None:
        """Pooled share and mean negative count while the key warms up; then an EWMA of each."""
        s = self.settings
        if state.windows < max(1, s.warmup_windows):
            state.seen_negative += stats.negative
            state.seen_total += stats.total
            share = (s.prior_share * s.prior_documents + state.seen_negative) / max(
                s.prior_documents + state.seen_total, 1e-9
            )
            state.baseline_negative = (s.prior_count + state.seen_negative) / (state.windows + 2)
        else:
            weight = s.baseline_weight * scale
            share = (1 - weight) * state.baseline_share + weight * stats.share if stats.total else state.baseline_share
            state.baseline_negative = (1 - weight) * state.baseline_negative + weight * stats.negative
        state.baseline_share = min(max(share, SHARE_BOUNDS[0]), SHARE_BOUNDS[1])
        state.windows += 1

    def _alert(self, state: KeyState, stats: WindowStats, status: str, decision: dict[str, Any]) -> Alert:
        lift = stats.share / state.baseline_share if state.baseline_share else 0.0
        p_value = float(decision.get("p_value") or 1.0)
        severity = "critical" if p_value < self.settings.alpha / 100 and lift >= 2 else "warning"
        headlines = sorted(stats.headlines, key=lambda h: float(h.get("score", 0.0)))[:MAX_HEADLINES]
        return Alert(
            alert_id=alert_id(stats.scope, stats.key, stats.window_start),
            status=status,  # type: ignore[arg-type]
            scope=stats.scope,
            key=stats.key,
            reason=decision.get("reason"),
            window=AlertWindow(start=stats.window_start, end=stats.window_end),
            observed_negative_share=round(stats.share, 6),
            baseline_negative_share=round(state.baseline_share, 6),
            lift=round(lift, 4),
            count=stats.total,
            negative_count=stats.negative,
            baseline_negative_count=round(state.baseline_negative, 3),
            p_value=p_value,
            severity=severity,
            headlines=tuple(Headline.model_validate(h) for h in headlines),
            tickers=tuple(stats.tickers[:MAX_TICKERS]),
            model_version=stats.model_version,
        )
