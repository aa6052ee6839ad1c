"""Reading a secret setting from a mounted file (``M2FP_*_FILE``), once, at start-up.

Environment variables leak: into crash reports, ``/proc/PID/environ``, every child process and
``kubectl describe``. Kubernetes and compose can mount a secret as a file instead, so each
secret-valued setting also comes as ``M2FP_<NAME>_FILE``: the path of a file holding the value.
The file is read here, bounded, and its text is handed to the setting's own check; the file's
content never appears in a message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Passwords, salts and webhook URLs are short; a larger "secret" is a wrong path (a model, a log).
MAX_SECRET_FILE_BYTES = 4096


class SecretFileError(ValueError):
    """The file behind an ``M2FP_*_FILE`` setting cannot be used; the message names the file's
    problem, never its content."""


def read_secret_file(path: Path) -> str:
    """The text of ``path`` without surrounding whitespace (the newline ``echo`` adds).

    Symlinks are followed (kubelet mounts each secret through ``..data/`` links); a FIFO is
    refused without blocking, and at most ``MAX_SECRET_FILE_BYTES`` are read.

    Raises:
        SecretFileError: missing, unreadable, not a regular file, too large or not UTF-8.
    """
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SecretFileError(f"the file {path} does not exist") from None
    except OSError as exc:
        raise SecretFileError(f"the file {path} could not be read: {exc.strerror}") from None
    try:
        # fstat of the opened file: the file checked is the file read
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretFileError(f"{path} is not a regular file")
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"the file {path} could not be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"{path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretFileError(f"{path} is not UTF-8 text") from None
