"""Refusals of an output request: one clear line each, never an echo of bad input beyond the
names the user typed into their own program."""

from __future__ import annotations

from m2fp.errors import M2FPError


class OutputRequestError(M2FPError, ValueError):
    """A mask, label set or option that is unknown, malformed, or cannot be derived from the
    label set the result carries (e.g. ATR's Neck from a LIP result)."""


class PersonNotFoundError(OutputRequestError, LookupError):
    """``person=`` names a person the result does not have (or ``main`` of a result with no
    person)."""
