"""SIGTERM handling that works before TensorFlow is imported (pure Python)."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequest:
    """Set by SIGTERM; the training loop stops at the end of the current batch when it sees it."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = "SIGTERM"
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def install(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handler)
            self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
