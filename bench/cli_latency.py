"""How long `katib-hp generate` and `katib-hp validate` take, against importing the Katib SDK.

Both commands must import neither TensorFlow nor the Kubernetes client; the baseline is
`python -c "import kubeflow.katib"`, measured in the same run. Target: under 0.3 s per call.

Run: .venv/bin/python bench/cli_latency.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.3


def timed(argv: list[str], repeat: int) -> float:
    """Median wall time of ``argv`` over ``repeat`` runs (after one warm-up run for the file cache)."""
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    config = "examples/digits-bayes.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        manifest = str(Path(tmp) / "experiment.yaml")
        subprocess.run([python, "-m", "katib_hp.cli", "generate", "-q", config, "--output", manifest],
                       check=True, capture_output=True, cwd=ROOT)
        rows = [
            ("python -c 'import kubeflow.katib' (baseline)", timed([python, "-c", "import kubeflow.katib"], args.repeat)),
            ("python -c 'pass' (interpreter start)", timed([python, "-c", "pass"], args.repeat)),
            ("katib-hp generate " + config, timed([python, "-m", "katib_hp.cli", "generate", "-q", config],
                                                  args.repeat)),
            ("katib-hp validate <generated manifest>", timed([python, "-m", "katib_hp.cli", "validate", "-q",
                                                              manifest], args.repeat)),
        ]
    baseline = rows[0][1]
    print(f"{'command':58} {'median s':>9} {'vs SDK import':>14}")
    ok = True
    for name, seconds in rows:
        print(f"{name:58} {seconds:9.3f} {seconds / baseline:13.2f}x")
    for name, seconds in rows[2:]:
        met = seconds < TARGET_SECONDS
        ok &= met
        print(f"target < {TARGET_SECONDS} s for {name.split()[1]}: {'met' if met else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
