"""A launcher that forks trials of the built-in trainer from a warm worker (``python -m trainer.zygote``).

Starting Python and importing TensorFlow takes seconds; the worker does it once, in the trainer's
environment, and forks one process per trial (each still its own process, session and log, so trials stay
isolated). Any other command, or a trial whose start-up environment differs from the worker's, goes to
the fallback launcher; so does everything after the worker fails to start or dies (with one warning), so
a run never hangs on it. This module imports neither TensorFlow nor anything else heavy.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from katib_hp.local.launch import Launcher, SubprocessLauncher, TrialProcess

TRAINER_MODULE = "trainer"
TRAINER_SCRIPT = "katib-hp-trainer"
# The exit code reported for a trial whose exit status was lost with the worker that started it.
LOST_EXIT_CODE = 1
# Environment read while Python, numpy and TensorFlow start (import time): a trial whose values differ
# from the worker's would not get them in a fork, so it starts as its own process instead.
STARTUP_PREFIXES = ("PYTHON", "LD_", "KERAS_", "TF_", "OMP_", "OPENBLAS_", "MKL_", "CUDA_", "XLA_")
STARTUP_NAMES = ("HOME",)
_CLOSE_TIMEOUT_S = 5.0


def trainer_flags(argv: Sequence[str], python: str) -> list[str] | None:
    """The trainer's flags if ``argv`` runs the built-in trainer with ``python``'s environment, else None.

    Recognised: ``[python, '-m', 'trainer', ...]``, ``[python, '-u', '-m', 'trainer', ...]`` and the
    environment's ``katib-hp-trainer`` script next to ``python``.
    """
    if not argv:
        return None
    program = os.path.abspath(argv[0])
    if program == os.path.abspath(python):
        rest = list(argv[1:])
        if rest[:1] == ["-u"]:
            rest = rest[1:]
        return rest[2:] if rest[:2] == ["-m", TRAINER_MODULE] else None
    if program == os.path.join(os.path.dirname(os.path.abspath(python)), TRAINER_SCRIPT):
        return list(argv[1:])
    return None


def startup_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``env`` that takes effect when the interpreter and its libraries start."""
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES) or k in STARTUP_NAMES}


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (not ours to wait for: its parent, the worker, is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has ended
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _warn_on_stderr(message: str) -> None:
    print(f"katib-hp: warning: {message}", file=sys.stderr, flush=True)


class _Worker:
    """One ``python -m trainer.zygote`` process and what it has answered (filled by a reader thread)."""

    def __init__(self, python: str, env: Mapping[str, str], cwd: Path) -> None:
        self.startup_env = startup_environment(env)
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        self.cond = threading.Condition()
        self.ready = False
        self.dead = False
        self.started: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.exited: dict[str, int] = {}
        self._ids = (str(n) for n in itertools.count(1))
        try:
            self.process = subprocess.Popen(
                [python, "-u", "-m", "trainer.zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.stderr, env=dict(env), cwd=cwd, start_new_session=True)
        except OSError:
            self.stderr.close()
            raise
        threading.Thread(target=self._read, args=(self.process.stdout,), name="zygote-reader", daemon=True).start()

    def wait_ready(self, timeout: float) -> bool:
        with self.cond:
            self.cond.wait_for(lambda: self.ready or self.dead, timeout=timeout)
            return self.ready and not self.dead

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.stderr.seek(0)
            lines = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1].strip() if lines else ""
        return ""

    def _read(self, stream: IO[bytes]) -> None:
        """Reader thread: the worker's answers into the dictionaries the runner's thread polls."""
        for raw in stream:
            try:
                message: Any = json.loads(raw)
            except ValueError:
                continue  # the worker's stdout carries only our JSON lines, but be lenient
            if not isinstance(message, dict):
                continue
            with self.cond:
                if "ready" in message:
                    self.ready = True
                elif "started" in message:
                    self.started[str(message["started"])] = int(message["pid"])
                elif "exited" in message:
                    self.exited[str(message["exited"])] = int(message["code"])
                elif message.get("error") is not None:
                    self.errors[str(message["error"])] = str(message.get("message", ""))
                self.cond.notify_all()
        with self.cond:
            self.dead = True
            self.cond.notify_all()

    def fork(self, flags: list[str], env: Mapping[str, str], cwd: Path, log_path: Path,
             timeout: float) -> tuple[str, int | None, bool]:
        """Ask for a trial: (request id, its pid or None, whether the worker still works)."""
        assert self.process.stdin is not None
        request_id = next(self._ids)
        line = json.dumps({"id": request_id, "argv": flags, "env": dict(env), "cwd": str(cwd),
                           "log_path": str(log_path)})
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            return request_id, None, False
        with self.cond:
            self.cond.wait_for(lambda: request_id in self.started or request_id in self.errors or self.dead,
                               timeout=timeout)
            # Refused (e.g. a missing working directory): the fallback then reports it the usual way.
            return request_id, self.started.get(request_id), request_id in self.errors

    def exit_code(self, trial: _ForkedTrial) -> int | None:
        with self.cond:
            code = self.exited.get(trial.request_id)
            if code is not None or not self.dead:
                return code
        # The worker died before reporting: the trial lives on (reparented) until it ends, code unknown.
        if _running(trial.pid):
            return None
        with self.cond:
            self.exited[trial.request_id] = LOST_EXIT_CODE
        with contextlib.suppress(OSError), open(trial.log_path, "a", encoding="utf-8") as log:
            log.write("katib-hp: the warm trial worker exited before this trial; its exit code is unknown\n")
        return LOST_EXIT_CODE

    def stop(self, timeout: float) -> None:
        """End of input: the worker waits for its running trials, then exits; killed after ``timeout``."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its trials live on in their own sessions, as subprocess trials would
            self.process.wait()
        self.stderr.close()


class _ForkedTrial:
    """A trial forked by the worker; its exit code arrives on the worker's stdout."""

    def __init__(self, worker: _Worker, request_id: str, pid: int, log_path: Path) -> None:
        self._worker = worker
        self.request_id = request_id
        self.pid = pid
        self.log_path = log_path

    def poll(self) -> int | None:
        return self._worker.exit_code(self)

    def _signal_group(self, signum: int) -> None:
        if self.poll() is None:  # once reaped, the group id may belong to someone else
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)


class ZygoteLauncher:
    """Start built-in trainer trials as forks of one warm worker; anything else through ``fallback``.

    Args:
        python: the trainer environment's interpreter (the one trial commands name).
        fallback: launcher for other commands and for when the worker is unusable (default: subprocesses).
        startup_timeout: seconds to wait for the worker's imports, and for each fork.
        warn: receives one-line warnings (default: printed on stderr).
    """

    def __init__(self, python: str, *, fallback: Launcher | None = None, startup_timeout: float = 60,
                 warn: Callable[[str], None] | None = None) -> None:
        self.python = python
        self.fallback: Launcher = fallback if fallback is not None else SubprocessLauncher()
        self.startup_timeout = startup_timeout
        self._warn = warn if warn is not None else _warn_on_stderr
        self._worker: _Worker | None = None
        self._broken = False  # the worker failed: every later trial goes to the fallback
        self._warned_env = False

    @property
    def worker_pid(self) -> int | None:
        """The warm worker's pid while it runs, else None."""
        worker = self._worker
        return None if worker is None or self._broken or worker.dead else worker.process.pid

    def start(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> TrialProcess:
        """Fork the trial from the worker when it runs the built-in trainer, else start it through the fallback."""
        flags = trainer_flags(argv, self.python)
        worker = self._usable(env, cwd) if flags is not None else None
        if worker is not None and flags is not None:
            request_id, pid, working = worker.fork(flags, env, cwd, log_path, self.startup_timeout)
            if pid is not None:
                return _ForkedTrial(worker, request_id, pid, log_path)
            if not working:
                self._give_up("it exited" if worker.dead else "it stopped answering")
        return self.fallback.start(argv, env=env, cwd=cwd, log_path=log_path)

    def close(self) -> None:
        """Stop the worker (once its running trials end, or after a few seconds) and close the fallback."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(_CLOSE_TIMEOUT_S)
        self.fallback.close()

    def _usable(self, env: Mapping[str, str], cwd: Path) -> _Worker | None:
        if self._broken:
            return None
        worker = self._worker
        if worker is None:
            try:
                worker = self._worker = _Worker(self.python, env, cwd)
            except OSError as exc:
                self._give_up(f"cannot run {self.python} ({exc.strerror or exc})")
                return None
            if not worker.wait_ready(self.startup_timeout):
                why = worker.stderr_tail() or f"no answer within {self.startup_timeout:g} s"
                self._give_up(f"it did not start ({why})")
                return None
        if worker.dead:
            self._give_up("it exited")
            return None
        if startup_environment(env) != worker.startup_env:
            if not self._warned_env:
                self._warned_env = True
                self._warn("a trial's start-up environment (PYTHON*, TF_*, ...) differs from the warm trial "
                           "worker's; such trials start as their own processes")
            return None
        return worker

    def _give_up(self, why: str) -> None:
        self._broken = True
        self._warn(f"warm trial worker unusable: {why}; starting each trial as its own process")
        worker = self._worker
        if worker is not None and worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
