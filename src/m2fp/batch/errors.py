"""The batch job's own refusals (a usage error of the command, before any image is parsed)."""

from __future__ import annotations

from m2fp.errors import M2FPError


class BatchError(M2FPError):
    """The job cannot start as asked: an unreadable input list, two inputs with the same
    outputs, more CPUs asked than the cluster has, an output folder of another form."""


class BatchRunError(M2FPError):
    """The job started but could not go on: its actor pool did not start in time, or an
    actor failed (its model did not load)."""
