"""Errors of a local run (``katib-hp run-local``)."""

from __future__ import annotations

from katib_hp.errors import KatibHPError


class LocalRunError(KatibHPError):
    """The experiment cannot be run on this machine as written."""

    exit_code = 2


class UnsupportedError(LocalRunError, ValueError):
    """The manifest uses something only a cluster can run (a trial kind, a collector kind, a template source)."""


class WorkDirError(LocalRunError):
    """The work directory holds another experiment, or a finished run that would be overwritten."""


class LocalRunInterrupted(KatibHPError):
    """Ctrl-C or SIGTERM stopped the run; finished trials are kept and ``--resume`` continues it."""

    exit_code = 130
