"""Files m2fp writes whole (an encrypted model, an exported graph, a converted package): they
appear only complete, never over an existing file.

Output goes to a hidden ``.partial`` sibling created with O_EXCL and is renamed into place
when complete, so a failed run leaves nothing half-written and an existing file is never
replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from m2fp.errors import CheckpointError

PUBLIC = 0o644  # ciphertext
PRIVATE = 0o600  # plaintext weights in any form


@contextmanager
def new_file(path: Path, *, mode: int = PUBLIC) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` (with ``mode``) only if the ``with`` block succeeds.

    Raises:
        CheckpointError: ``path`` exists, or cannot be created or written.
    """
    if path.exists():
        raise CheckpointError(f"{path.name} already exists; choose another --out")
    partial = path.with_name(f".{path.name}.partial")
    try:
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be created: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CheckpointError(f"{path.name} could not be written: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
