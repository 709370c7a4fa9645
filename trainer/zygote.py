"""``python -m trainer.zygote``: a warm worker that imports TensorFlow once and forks one process per trial.

Starting Python and importing TensorFlow costs seconds per trial; a fork of a process that has already
imported it costs milliseconds. The worker only imports (no TensorFlow op runs, so no TensorFlow thread
pool exists yet: they are created lazily, in each child, at its first op), then serves requests, one JSON
object per line on stdin::

    {"id": "t1", "argv": ["--learning_rate=0.01"], "env": {...}, "cwd": "/runs/t1", "log_path": "/runs/t1.log"}

``argv`` are the trainer's flags (what follows ``python -m trainer``). For each request it forks a child
that becomes what ``python -u -m trainer <argv>`` started in its own session would be: stdin from
/dev/null, stdout and stderr appended to ``log_path``, ``cwd`` and exactly ``env``, default signal
handlers; it runs ``trainer.__main__.main(argv)`` and exits with its code. The worker answers on stdout::

    {"ready": <worker pid>}                          once, after the imports
    {"started": "t1", "pid": 1234}                   the child exists and leads its own process group
    {"exited": "t1", "pid": 1234, "code": 143}       negative code: killed by that signal (as subprocess)
    {"error": "t1", "message": "..."}                the request could not be started (nothing runs)

A crashing child never takes the worker down. At end of input the worker waits for its children and exits.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TextIO

# What a fresh interpreter does with these; every other signal starts at its default action.
_PYTHON_SIGNAL_DEFAULTS: dict[int, Any] = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGPIPE: signal.SIG_IGN,
    signal.SIGXFSZ: signal.SIG_IGN,
}
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def preload() -> None:
    """Import TensorFlow, Keras and the trainer's modules; run nothing that would start threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as trainer.__main__ does before its import
    import trainer.__main__
    import trainer.data
    import trainer.hypermodel
    import trainer.model
    import trainer.train  # noqa: F401  (imports tensorflow and keras)

    # Imported by the first training run otherwise (digits loader, KerasTuner for --hypermodel).
    for optional in ("sklearn.datasets", "keras_tuner", "tensorflow.python.data.ops.cache_op"):
        with contextlib.suppress(ImportError):
            __import__(optional)


def tensorflow_started() -> bool:
    """Whether TensorFlow's runtime (its eager context and thread pools) exists in this process.

    It must not before a fork: a child would inherit pools whose threads did not survive the fork.
    """
    try:
        from tensorflow.python.eager import context
    except ImportError:
        return False
    return getattr(context, "_context", None) is not None


class Request:
    """One parsed request line."""

    def __init__(self, data: Mapping[str, Any], number: int) -> None:
        self.id: Any = data.get("id", number)
        argv, env, cwd, log_path = data.get("argv"), data.get("env"), data.get("cwd"), data.get("log_path")
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise ValueError("'argv' must be a list of strings (the trainer's flags)")
        if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise ValueError("'env' must be an object of strings")
        if not isinstance(cwd, str) or not os.path.isdir(cwd):
            raise ValueError(f"'cwd' must be an existing directory (got {cwd!r})")
        if not isinstance(log_path, str) or not log_path:
            raise ValueError("'log_path' must be a file path")
        self.argv: list[str] = argv
        self.env: dict[str, str] = env
        self.cwd = os.path.abspath(cwd)
        self.log_path = log_path


def _become_trial(request: Request, log_fd: int, ready_w: int, close_fds: list[int]) -> None:
    """In the child: detach, redirect, reset, then signal the parent that the process group exists."""
    os.setsid()
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        if signum not in _UNCATCHABLE:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, _PYTHON_SIGNAL_DEFAULTS.get(signum, signal.SIG_DFL))
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null)
    os.close(log_fd)
    # The process's own streams (fds 0-2), even where the worker's sys.stdout was swapped for another object.
    sys.stdout = sys.__stdout__ or sys.stdout
    sys.stderr = sys.__stderr__ or sys.stderr
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  (the process's own stdin, never closed)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    # ``python -m`` puts the working directory first on sys.path (a --hypermodel module may live there).
    sys.path[0] = request.cwd
    sys.argv = [os.path.join(os.path.dirname(__file__), "__main__.py"), *request.argv]
    with contextlib.suppress(ImportError):
        import numpy

        numpy.random.seed()  # a fresh process would not share the worker's global numpy state
    os.close(ready_w)  # the parent waits for this: after it, killpg(pid) reaches the trial


Entry = Callable[[list[str]], int]


def _trainer_main(argv: list[str]) -> int:
    from trainer.__main__ import main

    return main(argv)


def _run_trial(request: Request, entry: Entry, log_fd: int, ready_w: int, close_fds: list[int]) -> None:
    code = 1
    try:
        _become_trial(request, log_fd, ready_w, close_fds)
        code = entry(request.argv)
    except SystemExit as exc:  # as the interpreter would treat it
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            with contextlib.suppress(BaseException):
                print(exc.code, file=sys.stderr)
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code & 0xFF)


class Zygote:
    """The serving loop: reads requests, forks trials, reaps them, reports both on ``out``.

    Args:
        in_fd: file descriptor the requests are read from.
        out: where the answers are written (default: stdout).
        entry: what a child runs with the request's argv; returns the exit code (default: the trainer's
            ``main``).
    """

    def __init__(self, in_fd: int = 0, out: TextIO | None = None, entry: Entry = _trainer_main) -> None:
        self.in_fd = in_fd
        self.out = out if out is not None else sys.stdout
        self.entry = entry
        self.children: dict[int, Any] = {}  # pid -> request id
        self._buffer = b""
        self._count = 0
        self._out_gone = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def send(self, message: Mapping[str, Any]) -> None:
        if self._out_gone:
            return
        try:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()
        except OSError:  # the client is gone; keep reaping, stop reading
            self._out_gone = True

    def serve(self) -> int:
        """Serve until end of input, then wait for the children; return the worker's exit code."""
        previous = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            self.send({"ready": os.getpid()})
            reading = True
            while reading or self.children:
                watched = [self._wake_r, self.in_fd] if reading and not self._out_gone else [self._wake_r]
                ready, _, _ = select.select(watched, [], [], 1.0)
                if self._wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                self.reap()
                if self.in_fd in ready:
                    reading = self._read_requests()
                if self._out_gone:
                    reading = False
        finally:
            signal.set_wakeup_fd(old_wakeup)
            signal.signal(signal.SIGCHLD, previous)
            os.close(self._wake_r)
            os.close(self._wake_w)
        return 0

    def _read_requests(self) -> bool:
        chunk = os.read(self.in_fd, 65536)
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.handle(line)
        if not chunk and self._buffer.strip():
            self.handle(self._buffer)
        return bool(chunk)

    def handle(self, line: bytes) -> None:
        """Parse one request line and start its trial (or report why not)."""
        self._count += 1
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a request must be a JSON object")
        except ValueError as exc:
            self.send({"error": None, "message": f"unreadable request: {exc}"})
            return
        try:
            request = Request(data, self._count)
        except ValueError as exc:
            self.send({"error": data.get("id", self._count), "message": str(exc)})
            return
        try:
            pid = self.start(request)
        except OSError as exc:
            self.send({"error": request.id, "message": f"cannot start the trial: {exc}"})
            return
        self.children[pid] = request.id
        self.send({"started": request.id, "pid": pid})

    def start(self, request: Request) -> int:
        """Fork the trial; return once it leads its own session (so signalling its group cannot miss)."""
        os.makedirs(os.path.dirname(os.path.abspath(request.log_path)), exist_ok=True)
        log_fd = os.open(request.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        ready_r, ready_w = os.pipe()
        try:
            # Nothing buffered may be copied into the child and written twice.
            for stream in (sys.stdout, sys.stderr, self.out):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            pid = os.fork()
            if pid == 0:  # pragma: no cover  (the child ends inside: os._exit)
                inherited = [ready_r, self._wake_r, self._wake_w] + ([self.in_fd] if self.in_fd > 2 else [])
                _run_trial(request, self.entry, log_fd, ready_w, inherited)
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(log_fd)
            os.close(ready_w)
        try:
            while os.read(ready_r, 1):  # EOF once the child closed its end (or died)
                pass
        finally:
            os.close(ready_r)
        return pid

    def reap(self) -> None:
        """Collect every finished child and report its exit code."""
        for pid in list(self.children):  # only ours: never take another child's status from its owner
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # pragma: no cover  (reaped elsewhere: its code is lost)
                done, status = pid, 255 << 8
            if done == pid:
                request_id = self.children.pop(pid)
                self.send({"exited": request_id, "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def main() -> int:
    """Preload, then serve stdin; requests and answers are JSON lines."""
    preload()
    if tensorflow_started():
        print("trainer.zygote: warning: TensorFlow's runtime started during the imports; forked trials may "
              "hang", file=sys.stderr, flush=True)
    # Objects that exist now are never collected: a child's garbage collector leaves their pages shared.
    gc.freeze()
    return Zygote().serve()


if __name__ == "__main__":
    sys.exit(main())
