"""Katib's rules for raising the trial budget of an experiment, checked before sending the patch.

Katib restarts a finished experiment only if it Succeeded with reason ExperimentMaxTrialsReached and its
resumePolicy is LongRunning or FromVolume (REFERENCE 1.7, webhook rules V7 and V8). Checking first turns the
webhook's terse denial into a message that says what to do instead.
"""

from __future__ import annotations

from typing import Any

from katib_hp.backends.errors import ResumeRefused
from katib_hp.backends.status import Condition, condition, name_of


def check_resumable(experiment: dict[str, Any], max_trial_count: int, parallel_trial_count: int | None) -> None:
    """Raise ``ResumeRefused`` unless Katib would accept this new budget (REFERENCE 1.7 and rules V7, V8)."""
    name = name_of(experiment)
    spec = experiment.get("spec") or {}
    status = experiment.get("status") or {}
    policy = str(spec.get("resumePolicy") or "Never")
    old_max = spec.get("maxTrialCount")
    failed = condition(experiment, Condition.FAILED)
    succeeded = condition(experiment, Condition.SUCCEEDED)
    new_experiment = "submit a new experiment (with resumePolicy: LongRunning to be able to resume it later)"
    if failed is not None:
        raise ResumeRefused(f"experiment '{name}' failed ({failed.get('message') or failed.get('reason')}); Katib "
                            "cannot restart a failed experiment", value=name, hint=new_experiment)
    if succeeded is not None:
        reason = str(succeeded.get("reason") or "")
        if reason != "ExperimentMaxTrialsReached":
            raise ResumeRefused(f"experiment '{name}' succeeded with reason {reason or 'unknown'}; Katib restarts "
                                "only experiments that stopped at maxTrialCount", value=name, hint=new_experiment)
        if policy not in ("LongRunning", "FromVolume"):
            raise ResumeRefused(f"experiment '{name}' has resumePolicy {policy}, so Katib removed its suggestion "
                                "service when it finished and cannot restart it", value=name, hint=new_experiment)
    if isinstance(old_max, int) and max_trial_count <= old_max:
        raise ResumeRefused(f"the new maxTrialCount {max_trial_count} must be larger than the current {old_max}",
                            value=max_trial_count, hint=f"pass a number above {old_max}")
    done = int(status.get("trials") or 0)
    if max_trial_count <= done:
        raise ResumeRefused(f"the new maxTrialCount {max_trial_count} must be larger than the {done} trials "
                            "created so far", value=max_trial_count, hint=f"pass a number above {done}")
    if parallel_trial_count is not None and parallel_trial_count > max_trial_count:
        raise ResumeRefused(f"parallelTrialCount {parallel_trial_count} exceeds maxTrialCount {max_trial_count}",
                            value=parallel_trial_count, hint="lower parallelTrialCount")
