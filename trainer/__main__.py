"""``python -m trainer`` / ``katib-hp-trainer``: train one Katib trial.

Flags are parsed first, without TensorFlow, so a bad flag fails in a fraction of a second with one line on
stderr (exit 2). Exit codes: 0 ok, 1 unexpected failure (a bug: traceback), 2 bad flags or settings,
3 data problem, 4 NaN/inf loss or metric, 5 model cannot be built or restored, 143 stopped by SIGTERM
(after saving a checkpoint). ``--print-space`` prints the search space (YAML or JSON) and exits.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from trainer.args import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    TrainerError,
    UsageError,
    build_parser,
    fail,
    parse_args,
)
from trainer.signals import StopRequest


def _report(message: str, code: int) -> int:
    """One line on stderr (``trainer: error: ...``); return the exit code instead of exiting."""
    with contextlib.suppress(SystemExit):
        fail(message, code)
    return code


def _load_hypermodel_space(spec: str) -> Any:
    _quiet_tensorflow()
    from trainer.hypermodel import extract_space

    return extract_space(spec)


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter off stderr unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the trainer; return the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config, ns = parse_args(args, load_hypermodel_space=_load_hypermodel_space)
        if ns.help:
            sys.stdout.write(build_parser(config.space).format_help())
            return EXIT_OK
        if ns.print_space:
            text = config.space.to_json() + "\n" if ns.space_format == "json" else config.space.to_yaml()
            sys.stdout.write(text)
            sys.stdout.flush()
            return EXIT_OK
    except UsageError as exc:
        return _report(str(exc), EXIT_USAGE)
    except TrainerError as exc:
        return _report(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _report("interrupted", 130)
    except Exception:
        traceback.print_exc()
        return EXIT_FAILURE

    stop = StopRequest().install()
    try:
        _quiet_tensorflow()
        from trainer.train import run

        run(config, stop=stop, launch_time=None)
    except TrainerError as exc:
        if exc.exit_code == EXIT_TERMINATED:
            print(f"trainer: {exc}", file=sys.stderr, flush=True)
            return EXIT_TERMINATED
        return _report(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _report("interrupted", 130)
    except Exception:
        traceback.print_exc()
        return EXIT_FAILURE
    finally:
        stop.uninstall()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
