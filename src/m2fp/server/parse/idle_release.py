"""GPU memory handed back to the driver once the service has been idle a while, not after
every parse.

PyTorch's caching allocator keeps the blocks a forward freed so the next forward reuses them;
``empty_cache()`` returns them to the driver (other processes can use them then), and the next
parse allocates them again, GBs for R101 at 1344 px. Releasing whenever the queue is
momentarily empty would pay that on nearly every request of a steady trickle, so the release
waits until no parse has run for ``after`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# seconds without a parse before the device's cached memory goes back to the driver
IDLE_RELEASE_SECONDS = 30.0


class IdleRelease:
    """Calls ``release`` once, ``after`` seconds after the last parse ended with none running;
    a parse starting meanwhile cancels it.

    Args:
        release: hands the device's cached memory back (``HumanParser.release_device_memory``).
        after: idle seconds before it is called.
    """

    def __init__(self, release: Callable[[], None], *, after: float = IDLE_RELEASE_SECONDS):
        if after < 0:
            raise ValueError("after must be >= 0 seconds")
        self._release = release
        self._after = after
        self._lock = threading.Lock()
        self._running = 0
        self._idle_since = 0  # generation: which idle period a timer belongs to
        self._timer: threading.Timer | None = None
        self._closed = False

    def begin(self) -> None:
        """A parse starts: no release until it ends."""
        with self._lock:
            self._running += 1
            self._idle_since += 1
            self._cancel()

    def end(self) -> None:
        """A parse ended: the idle period starts when it was the last one running."""
        with self._lock:
            self._running -= 1
            if self._running or self._closed:
                return
            self._idle_since += 1
            self._cancel()
            self._timer = threading.Timer(self._after, self._fire, args=(self._idle_since,))
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """No more releases (shutdown): a pending one is cancelled."""
        with self._lock:
            self._closed = True
            self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, generation: int) -> None:
        # under the lock, so a parse that begins now waits for the release to finish
        with self._lock:
            if generation != self._idle_since or self._running or self._closed:
                return  # a parse came (and maybe went) since this idle period began
            self._timer = None
            self._release()
