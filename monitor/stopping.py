"""A bound on how long any finmon process takes to stop: 25 s after the first SIGTERM or SIGINT.

A clean stop flushes and commits what it can within its own limits (each stage's pipe, each
delivery lane and each client has one) and says what it left. Where a broker is frozen, a client
library can still wait on it far longer; past the deadline the process says so in one line and
exits with status 1, before an orchestrator's grace period (30 s and up) ends in SIGKILL. Nothing is
lost that way either: what was not committed is read again at the next start.
"""

from __future__ import annotations

import os
import sys
import threading
import time

DEADLINE = 25.0


class StopDeadline:
    """Armed once; a daemon thread that ends the process if it is still here at the deadline."""

    def __init__(self, name: str, deadline: float = DEADLINE) -> None:
        self.name = name
        self.deadline = deadline
        self._armed = threading.Event()
        self._changed = threading.Condition()
        self._began = 0.0
        self._until = float("inf")

    def arm(self) -> None:
        with self._changed:
            if self._armed.is_set():
                return
            self._armed.set()
            self._began = time.monotonic()
            self._until = self._began + self.deadline
        threading.Thread(target=self._watch, name="finmon-stop-deadline", daemon=True).start()

    def tighten(self, seconds: float) -> None:
        """What is left to stop may take ``seconds`` more at most (finmon's own parts have stopped)."""
        with self._changed:
            self._until = min(self._until, time.monotonic() + seconds)
            self._changed.notify_all()

    def _watch(self) -> None:
        with self._changed:
            while (left := self._until - time.monotonic()) > 0:
                self._changed.wait(left)
        took = time.monotonic() - self._began
        print(
            f"finmon {self.name}: did not stop within {took:.0f} s of the signal (a broker does not "
            "answer): exiting without the rest of the flush; what was not committed is read again at the next start",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)
