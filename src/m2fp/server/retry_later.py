"""The shape of every refusal that waiting cures: a reason of the API contract and a wait.

Six component exceptions have it: ``RateLimited``, ``Banned`` and ``StorageUnavailable``
(abuse), ``Overloaded`` and ``InferenceTimeout`` (the parse queue) and ``MemoryShedding``
(the memory watchdog). The components only raise them; ``errors.py`` turns every one into the
API's error answer with its ``Retry-After`` header, in one place.
"""

from __future__ import annotations

from typing import ClassVar


class RetryLater(Exception):
    """A refusal the client can retry after ``retry_after`` seconds.

    Attributes:
        reason: the error reason of the API contract (a key of ``errors.REASONS``), fixed per
            subclass.
        retry_after: seconds until retrying can succeed, as the component estimates it.
    """

    reason: ClassVar[str]

    def __init__(self, retry_after: float) -> None:
        super().__init__(self.reason)
        self.retry_after = retry_after
