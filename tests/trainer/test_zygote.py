"""The warm trial worker: each request becomes a process that behaves like ``python -u -m trainer <flags>``."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trainer.metrics import parse_katib_line
from trainer.zygote import Zygote

ROOT = Path(__file__).resolve().parents[2]
DECLARED = ["loss", "accuracy", "val_loss", "val_accuracy"]
MLP = ["--num_conv_layers=0", "--dense_units_0=32"]


# -- the serving loop with stand-in entry points (no TensorFlow, fast) -------------------------------------

def probe(argv: list[str]) -> int:
    """Report what the child looks like from inside, then exit with the code in argv[0]."""
    report = {
        "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0), "cwd": os.getcwd(),
        "env": dict(os.environ), "stdin": sys.stdin.read(), "path0": sys.path[0], "argv": sys.argv[1:],
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigchld_default": signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
        "sigint_python": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    }
    print(json.dumps(report), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    return int(argv[0]) if argv else 0


def crash(argv: list[str]) -> int:
    if argv == ["raise"]:
        raise RuntimeError("boom in the trial")
    if argv == ["exit"]:
        sys.exit(7)
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def serve(requests: list[Any], entry: Any) -> list[dict[str, Any]]:
    """Run the loop in this process over ``requests`` (until they end and every child is reaped)."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in requests))
    os.close(write_fd)
    out = io.StringIO()
    try:
        assert Zygote(in_fd=read_fd, out=out, entry=entry).serve() == 0
    finally:
        os.close(read_fd)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def request(tmp_path: Path, rid: str, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": rid, "argv": argv, "env": env or {}, "cwd": str(tmp_path), "log_path": str(tmp_path / f"{rid}.log")}


def test_child_gets_its_own_session_env_cwd_streams_and_default_signals(tmp_path):
    work = tmp_path / "trial"
    work.mkdir()
    (tmp_path / "t1.log").write_text("earlier attempt\n")
    env = {"KATIB_TRIAL_NAME": "t1", "ONLY_HERE": "1"}
    messages = serve([{**request(tmp_path, "t1", ["0", "--x=1"], env), "cwd": str(work)}], probe)

    assert messages[0] == {"ready": os.getpid()}
    started, exited = messages[1], messages[2]
    assert started == {"started": "t1", "pid": started["pid"]}
    assert exited == {"exited": "t1", "pid": started["pid"], "code": 0}
    earlier, report_line, stderr_line = (tmp_path / "t1.log").read_text().splitlines()
    assert earlier == "earlier attempt"  # appended, like the subprocess launcher
    assert stderr_line == "to stderr"
    report = json.loads(report_line)
    assert report["pid"] == report["sid"] == report["pgid"] == started["pid"]
    assert report["cwd"] == report["path0"] == str(work)
    assert report["env"] == env  # exactly the request's environment, nothing of the worker's
    assert report["stdin"] == ""
    assert report["argv"] == ["0", "--x=1"]
    assert report["sigterm_default"] and report["sigchld_default"] and report["sigint_python"]


def test_failing_children_report_codes_and_the_worker_keeps_serving(tmp_path):
    messages = serve([request(tmp_path, "raise", ["raise"]), request(tmp_path, "exit", ["exit"]),
                      request(tmp_path, "killed", ["kill"]), request(tmp_path, "ok", ["5"])],
                     lambda argv: crash(argv) if argv != ["5"] else probe(argv))

    codes = {m["exited"]: m["code"] for m in messages if "exited" in m}
    assert codes == {"raise": 1, "exit": 7, "killed": -signal.SIGKILL, "ok": 5}
    assert "RuntimeError: boom in the trial" in (tmp_path / "raise.log").read_text()


def test_bad_requests_are_answered_and_skipped(tmp_path):
    messages = serve([b"not json", request(tmp_path, "nocwd", [], {}) | {"cwd": str(tmp_path / "missing")},
                      {"id": "noargv", "env": {}, "cwd": str(tmp_path), "log_path": "x.log"},
                      request(tmp_path, "good", ["0"])], probe)

    errors = [m for m in messages if "error" in m]
    assert [e["error"] for e in errors] == [None, "nocwd", "noargv"]
    assert "missing" in errors[1]["message"] and "argv" in errors[2]["message"]
    assert {"exited": "good", "pid": messages[-1]["pid"], "code": 0} in messages
    assert not (tmp_path / "nocwd.log").exists()


# -- the real worker and the real trainer (imports TensorFlow once: slow) ----------------------------------

class Worker:
    """``python -u -m trainer.zygote`` in the trainer environment, with its answers on a queue."""

    def __init__(self, cwd: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.env = env
        self.stderr = cwd / "worker.err"
        with self.stderr.open("w") as stderr:
            self.process = subprocess.Popen([sys.executable, "-u", "-m", "trainer.zygote"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=cwd)
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert "ready" in self.next()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.answers.put(json.loads(line))

    def next(self, timeout: float = 120) -> dict[str, Any]:
        return self.answers.get(timeout=timeout)

    def send(self, message: dict[str, Any]) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        answer = self.next()
        assert answer.get("started") == message["id"], answer
        return int(answer["pid"])

    def run(self, message: dict[str, Any]) -> int:
        self.send(message)
        answer = self.next()
        assert answer.get("exited") == message["id"], answer
        return int(answer["code"])


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    worker = Worker(tmp_path_factory.mktemp("worker"))
    yield worker
    assert worker.process.stdin is not None
    worker.process.stdin.close()  # end of input: the worker exits once its children have
    assert worker.process.wait(timeout=30) == 0
    # The imports left TensorFlow's runtime unstarted (else forked trials could hang on dead pool threads).
    assert "runtime started" not in worker.stderr.read_text()


def metrics_of_text(text: str) -> list[dict[str, float]]:
    lines = [parse_katib_line(line, DECLARED) for line in text.splitlines() if " epoch=" in line]
    return [{name: float(value) for name, value in line.metrics} for line in lines if line is not None]


def metrics(log: Path) -> list[dict[str, float]]:
    return metrics_of_text(log.read_text())


@pytest.mark.slow
def test_consecutive_trials_train_like_a_fresh_process(worker, tmp_path):
    flags = [*MLP, "--epochs=1", f"--metrics-file={tmp_path / 'metrics.txt'}"]
    env = dict(worker.env, KATIB_TRIAL_NAME="t")
    assert worker.run(request(tmp_path, "a", flags, env)) == 0
    assert worker.run(request(tmp_path, "b", ["--num_conv_layers=0", "--dense_units_0=64", "--epochs=2"], env)) == 0
    assert worker.run(request(tmp_path, "c", flags, env)) == 0
    cold = subprocess.run([sys.executable, "-u", "-m", "trainer", *flags], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert cold.returncode == 0, cold.stderr

    a, b, c = (metrics(tmp_path / f"{rid}.log") for rid in "abc")
    assert [len(a), len(b), len(c)] == [1, 2, 1]
    assert a[0]["val_accuracy"] > 0.1
    # Each trial starts from the worker's pristine state: the first trial leaves nothing behind.
    expected = metrics_of_text(cold.stdout)
    assert c[0] == pytest.approx(a[0], rel=1e-5)
    assert a[0] == pytest.approx(expected[0], rel=1e-5)


@pytest.mark.slow
def test_bad_flag_exits_2_and_worker_survives(worker, tmp_path):
    assert worker.run(request(tmp_path, "bad", ["--bogus"], worker.env)) == 2
    assert "trainer: error: unrecognized arguments: --bogus" in (tmp_path / "bad.log").read_text()
    assert worker.run(request(tmp_path, "help", ["--help"], worker.env)) == 0
    assert worker.process.poll() is None


@pytest.mark.slow
def test_sigterm_to_the_trial_group_stops_it_with_143(worker, tmp_path):
    log = tmp_path / "long.log"
    pid = worker.send(request(tmp_path, "long", [*MLP, "--epochs=300"], worker.env))
    deadline = time.monotonic() + 120
    while " epoch=" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    os.killpg(pid, signal.SIGTERM)
    answer = worker.next()
    assert answer == {"exited": "long", "pid": pid, "code": 143}
    assert "terminated by SIGTERM" in log.read_text()
    assert worker.process.poll() is None
