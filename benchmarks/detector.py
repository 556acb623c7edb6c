"""Spike detection quality on simulated streams with known truth, per detector preset, beside two
simple baselines measured on the same streams in the same run.

Many keys, one-minute windows. Each key has its own story volume (Poisson) and usual negative share;
some get injected surges of several sizes (added negative share, with the volume rising too) and
lengths; some are quiet (a story or two a window); some are busy and always gloomy (50-70%
negative from their first window: a new key must not alarm on its own level); some go silent
part-way (the worker reports
``silent_windows`` empty windows after a key's last story, then nothing); some shift to a new level
for good. Reported per detector:

- detection rate by surge size: surges with a firing alert from their first window to one after
  their last; and the delay, in windows, from the surge's start to that alert (median);
- false alarms per key-hour: firing alerts that start outside every surge and shift (and their
  window after), overall and on the gloomy keys alone;
- resolution: windows from a surge's end until its alert resolves (median); of alerts still firing
  when their key goes silent (a surge is its last news), how many resolve; of level shifts that
  fire, how many resolve (a new normal).

Baselines: a fixed threshold (negative share >= 0.5 with at least 10 stories) and a z-score of the
share against its last 30 windows (z >= 3, at least 10 stories); each fires when its condition holds
and resolves when it does not.

    python benchmarks/detector.py [--keys 300] [--hours 8] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.records import WindowStats
from alerts.settings import PRESETS, preset
from alerts.spike import SpikeDetector

T0 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
SIZES = (0.15, 0.3, 0.5)
LENGTHS = (1, 3, 10)
SILENT_WINDOWS = 3


@dataclass
class Key:
    name: str
    volume: float
    share: float
    kind: str  # normal | quiet | silent | shift
    surges: list[tuple[int, int, float]] = field(default_factory=list)  # (start, length, size)
    change: int = -1  # where a silent key stops, or a shift starts


def make_keys(count: int, windows: int, rng: random.Random) -> list[Key]:
    keys = []
    for i in range(count):
        kind = rng.choices(["normal", "quiet", "silent", "shift", "gloomy"], weights=[6, 2, 1, 1, 1])[0]
        volume = (
            rng.uniform(1, 3) if kind == "quiet" else rng.uniform(30, 60) if kind == "gloomy" else rng.uniform(8, 60)
        )
        share = rng.uniform(0.5, 0.7) if kind == "gloomy" else rng.uniform(0.1, 0.35)
        key = Key(f"k{i}", volume, share, kind)
        if kind in ("silent", "shift"):
            key.change = rng.randint(windows // 3, 2 * windows // 3)
        if kind == "normal":
            start = rng.randint(60, windows - 20)  # after a warm-up and an hour of history
            key.surges.append((start, rng.choice(LENGTHS), rng.choice(SIZES)))
        if kind == "silent":  # a surge, then nothing more: the alert must still resolve
            length = rng.choice(LENGTHS)
            key.surges.append((key.change - length, length, 0.5))
        keys.append(key)
    return keys


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def stream(key: Key, windows: int, rng: random.Random, silent: int) -> Iterator[tuple[int, int, int]]:
    """(window, negative, total) of one key, in order; silent keys stop after ``silent`` empty windows."""
    for w in range(windows):
        share, volume = key.share, key.volume
        if key.kind == "silent" and w >= key.change:
            if w >= key.change + silent:
                return
            yield w, 0, 0
            continue
        if key.kind == "shift" and w >= key.change:
            share = min(0.95, share + 0.25)
        for start, length, size in key.surges:
            if start <= w < start + length:
                share, volume = min(0.95, share + size), volume * (1 + 2 * size)
        total = poisson(rng, volume)
        yield w, sum(rng.random() < share for _ in range(total)), total


Decide = Callable[[str, int, int, int], str | None]  # (key, window, negative, total) -> firing | resolved


def finmon(sensitivity: str) -> Decide:
    detector = SpikeDetector(preset(sensitivity))  # type: ignore[arg-type]

    def decide(key: str, w: int, negative: int, total: int) -> str | None:
        start = datetime.fromtimestamp(T0 + 60 * w, UTC).isoformat()
        end = datetime.fromtimestamp(T0 + 60 * (w + 1), UTC).isoformat()
        produced = detector.observe(WindowStats("ticker", key, start, end, negative, total, end_seconds=T0 + 60 * w))
        return produced[0].status if produced else None

    return decide


def stateless(condition: Callable[[str, int, int], bool]) -> Decide:
    firing: set[str] = set()

    def decide(key: str, w: int, negative: int, total: int) -> str | None:
        now = condition(key, negative, total)
        if now and key not in firing:
            firing.add(key)
            return "firing"
        if not now and key in firing:
            firing.discard(key)
            return "resolved"
        return None

    return decide


def threshold() -> Decide:
    return stateless(lambda key, negative, total: total >= 10 and negative / total >= 0.5)


def zscore(history: int = 30, z: float = 3.0) -> Decide:
    past: dict[str, deque[float]] = {}

    def condition(key: str, negative: int, total: int) -> bool:
        shares = past.setdefault(key, deque(maxlen=history))
        share = negative / total if total else None
        fire = False
        if share is not None and total >= 10 and len(shares) >= 10:
            mean, spread = statistics.fmean(shares), statistics.pstdev(shares)
            fire = share > mean and (share - mean) / max(spread, 0.02) >= z
        if share is not None and not fire:
            shares.append(share)
        return fire

    return stateless(condition)


@dataclass
class Outcome:
    detected: dict[float, list[bool]] = field(default_factory=lambda: {s: [] for s in SIZES})
    delays: list[int] = field(default_factory=list)
    resolve_after: list[int] = field(default_factory=list)
    false_alarms: int = 0
    key_windows: int = 0
    gloomy_alarms: int = 0
    gloomy_windows: int = 0
    silent_alerts: int = 0
    silent_resolved: int = 0
    shifts_fired: int = 0
    shifts_resolved: int = 0


def evaluate(keys: list[Key], windows: int, decide: Decide, seed: int, silent: int = SILENT_WINDOWS) -> Outcome:
    out = Outcome()
    for key in keys:
        rng = random.Random(f"{seed}-{key.name}")  # the same stream for every detector
        events = [
            (w, status)
            for w, negative, total in stream(key, windows, rng, silent)
            if (status := decide(key.name, w, negative, total))
        ]
        out.key_windows += min(windows, key.change + silent) if key.kind == "silent" else windows
        firings = [w for w, status in events if status == "firing"]
        explained: set[int] = set()
        for start, length, size in key.surges:
            hit = [w for w in firings if start <= w <= start + length]
            out.detected[size].append(bool(hit))
            if hit:
                out.delays.append(hit[0] - start)
                explained.add(hit[0])
                ends = [w for w, status in events if status == "resolved" and w > hit[0]]
                if ends:
                    out.resolve_after.append(ends[0] - (start + length - 1))
        if key.kind == "shift":
            fired = [w for w in firings if w >= key.change]
            if fired:
                out.shifts_fired += 1
                explained.update(fired)
                out.shifts_resolved += any(status == "resolved" and w > fired[0] for w, status in events)
        if key.kind == "silent":
            state_at = {w: status for w, status in events}
            open_at_change = False
            for w in range(key.change):
                open_at_change = {"firing": True, "resolved": False}.get(state_at.get(w, ""), open_at_change)
            if open_at_change:
                out.silent_alerts += 1
                out.silent_resolved += any(status == "resolved" and w >= key.change for w, status in events)
        unexplained = sum(w not in explained for w in firings)
        out.false_alarms += unexplained
        if key.kind == "gloomy":
            out.gloomy_alarms += unexplained
            out.gloomy_windows += windows
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--silent-windows", type=int, default=SILENT_WINDOWS, help="empty windows after a key's last story"
    )
    args = parser.parse_args()
    windows = int(args.hours * 60)
    keys = make_keys(args.keys, windows, random.Random(args.seed))
    detectors: dict[str, Decide] = {f"finmon {name}": finmon(name) for name in PRESETS}
    detectors["threshold 0.5"] = threshold()
    detectors["z-score 3"] = zscore()
    kinds = {kind: sum(k.kind == kind for k in keys) for kind in ("normal", "quiet", "silent", "shift", "gloomy")}
    print(f"{args.keys} keys ({kinds}), {windows} one-minute windows each, {sum(len(k.surges) for k in keys)} surges")
    header = (
        f"{'detector':<16}"
        + "".join(f"{f'det +{s:.2f}':>11}" for s in SIZES)
        + f"{'delay w':>9}{'false/key-h':>13}{'gloomy/key-h':>14}{'resolve w':>11}{'silent ok':>11}"
        + f"{'shift fired':>13}{'shift res.':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, decide in detectors.items():
        out = evaluate(keys, windows, decide, args.seed, args.silent_windows)
        rates = "".join(f"{statistics.fmean(out.detected[s]) if out.detected[s] else 0:>11.2f}" for s in SIZES)
        hours = out.key_windows / 60
        delay = statistics.median(out.delays) if out.delays else float("nan")
        resolve = statistics.median(out.resolve_after) if out.resolve_after else float("nan")
        silent = f"{out.silent_resolved}/{out.silent_alerts}"
        shifted = f"{out.shifts_fired}/{kinds['shift']}"
        print(
            f"{name:<16}{rates}{delay:>9.1f}{out.false_alarms / hours:>13.4f}"
            f"{out.gloomy_alarms / max(1, out.gloomy_windows / 60):>14.4f}{resolve:>11.1f}{silent:>11}"
            f"{shifted:>13}{f'{out.shifts_resolved}/{out.shifts_fired}':>12}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
