"""Starting trial processes on this machine: the launcher the local runner is given.

A trial is one process started from its primary container's command + args, in its own session (so Ctrl-C
reaches only the runner, which then stops trials the way the kubelet does: SIGTERM, a grace period, SIGKILL).
Its stdout and stderr go to one log file, as Katib's StdOut collector redirects them (REFERENCE §4.1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol


class TrialProcess(Protocol):
    """A running trial."""

    pid: int

    def poll(self) -> int | None:
        """The exit code once finished (negative: killed by that signal), else None."""

    def terminate(self) -> None:
        """Ask the trial to stop (SIGTERM: the trainer checkpoints and exits 143)."""

    def kill(self) -> None:
        """Stop it now (SIGKILL)."""


class Launcher(Protocol):
    """Starts trial processes; the runner takes one so tests and the warm worker can stand in."""

    def start(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> TrialProcess:
        """Start ``argv`` with exactly ``env`` in ``cwd``, stdout and stderr appended to ``log_path``."""

    def close(self) -> None:
        """Release whatever the launcher holds (worker processes)."""


class _Popen:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self._process.poll()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)


class _NotStarted:
    """A trial whose command could not be started: it has already ended, like a container that fails to start."""

    pid = -1
    EXIT_CODE = 127  # what a shell returns for a command it cannot run

    def poll(self) -> int | None:
        return self.EXIT_CODE

    def terminate(self) -> None:
        return None

    def kill(self) -> None:
        return None


class SubprocessLauncher:
    """One fresh process per trial (any command: our trainer, a script, a shell)."""

    def start(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> TrialProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                # argv is a list (never a shell string); a new session isolates the trial's process group
                process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, env=dict(env), cwd=cwd, start_new_session=True)
            except OSError as exc:
                log.write(f"cannot start {argv[0] if argv else 'the trial'}: {exc.strerror or exc}\n".encode())
                return _NotStarted()
        return _Popen(process)

    def close(self) -> None:
        return None
