"""A stand-in trial program for the local runner's tests (standard library only, starts in milliseconds).

The objective ``val_accuracy`` is ``1 - |lr - 0.1|`` scaled up over the epochs, so a larger ``--lr`` near 0.1
is better. ``--mode`` picks a way to misbehave; the checkpoint flags write and read a small ``state.json``
the way katib-hp's trainer does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sleep", type=float, default=0.0, help="seconds per epoch")
    p.add_argument("--mode", default="ok",
                   choices=["ok", "crash", "hang", "colon", "silent", "nan", "wrong-name", "crash-once"])
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--metrics-file")
    p.add_argument("--metrics-format", default="text", choices=["text", "json", "json-number"])
    p.add_argument("--event-dir")
    p.add_argument("--checkpoint-dir")
    p.add_argument("--resume-from")
    p.add_argument("--initial-epoch", type=int, default=0)
    a = p.parse_args()
    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"trial={os.environ.get('KATIB_TRIAL_NAME', '')} cwd={os.getcwd()}", flush=True)
    start = a.initial_epoch
    if a.resume_from:
        state = json.loads((Path(a.resume_from) / "state.json").read_text())
        print(f"resumed from {a.resume_from} at epoch {state['epoch']} (initial {a.initial_epoch})", flush=True)
    if a.mode == "crash-once":
        marker = Path("crashed-once")
        if not marker.exists():
            marker.write_text("1")
            print("first attempt crashes", flush=True)
            return 3
    if a.mode == "crash":
        print("loading data", flush=True)
        print("ValueError: the fake trainer crashed on purpose", file=sys.stderr, flush=True)
        return 2
    if a.mode == "hang":
        print("hanging", flush=True)
        time.sleep(3600)
        return 0
    score = 1.0 - abs(a.lr - 0.1)
    for epoch in range(start + 1, a.epochs + 1):
        value = score * (0.5 + 0.5 * epoch / a.epochs)
        loss = 1.0 - value
        if a.mode == "colon":
            line = f"epoch {epoch}: loss: {loss:.4f} - val_accuracy: {value:.4f}"
        elif a.mode == "nan":
            line = f"epoch={epoch} loss=nan val_accuracy=nan"
        elif a.mode == "wrong-name":
            line = f"epoch={epoch} loss={loss:.4f} val_acc={value:.4f}"
        elif a.mode == "silent":
            line = ""
        else:
            line = f"epoch={epoch} loss={loss:.4f} val_accuracy={value:.4f}"
        if line:
            print(line, flush=True)
        if a.metrics_file:
            _write_metrics(Path(a.metrics_file), a.metrics_format, epoch, loss, value)
        if a.event_dir:
            _write_event(Path(a.event_dir), epoch, value)
        if a.checkpoint_dir:
            folder = Path(a.checkpoint_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "state.json").write_text(json.dumps({"epoch": epoch, "lr": a.lr}))
        time.sleep(a.sleep)
    return 0


def _write_metrics(path: Path, fmt: str, epoch: int, loss: float, value: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "text":
        line = f"epoch={epoch} loss={loss:.4f} val_accuracy={value:.4f}"
    elif fmt == "json":
        line = json.dumps({"epoch": str(epoch), "loss": f"{loss:.4f}", "val_accuracy": f"{value:.4f}"})
    else:
        line = json.dumps({"epoch": epoch, "loss": loss, "val_accuracy": value})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _write_event(folder: Path, epoch: int, value: float) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder / "validation"))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="val_accuracy", simple_value=value)])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=epoch, summary=summary))
    writer.close()


if __name__ == "__main__":
    sys.exit(main())
