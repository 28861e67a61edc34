"""Stop signals: SIGINT / SIGTERM / SIGUSR1 ask a training run to finish the step in flight,
save and stop; a second one aborts at once (KeyboardInterrupt)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

NAMES = ("SIGINT", "SIGTERM", "SIGUSR1")


class StopSignals:
    """A context manager that catches the stop signals in the main thread (Python delivers
    signals there; elsewhere it does nothing) and restores the previous handlers on exit.
    ``received``: the first signal's number, or None. ``announce`` is told its name."""

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.announce = announce
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        del frame
        if self.received is not None:
            raise KeyboardInterrupt  # a second signal: stop now, without saving
        self.received = signum
        self.announce(signal.Signals(signum).name)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {getattr(signal, n): signal.signal(getattr(signal, n),
                                                                self._on_signal) for n in NAMES if hasattr(signal, n)}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
