"""Fetch the official model files from the ModelScope hub: HTTPS, resumable, size- and
hash-checked, with the sha256 of every file recorded next to it.

A file is written to ``NAME.part`` and renamed when whole and hash-checked. The listing's
size bounds what is written: a hub sending more is refused at the first byte too many and
the ``.part`` removed, as on a failed write or a hash mismatch. Only a transfer cut short
(within the declared size) keeps its ``.part``, so that running the command again resumes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from m2fp.errors import M2FPError
from m2fp.url_policy import check_https_url
from m2fp.weights.location import DEFAULT_HUB_MODEL, HUB_MODELS, HubModel

DEFAULT_BASE_URL = "https://modelscope.cn"
FILES = ("configuration.json", "pytorch_model.pt")
CHECKSUMS_FILE = "SHA256SUMS"
TIMEOUT_S = 30
BLOCK = 1 << 20


class DownloadError(M2FPError):
    """The model could not be fetched; the message says why in one line."""


def _check_base_url(base_url: str) -> str:
    try:
        return check_https_url(base_url).rstrip("/")
    except ValueError as exc:
        raise DownloadError(f"the download base URL {exc}") from None


def _open(request: urllib.request.Request) -> Any:
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310  # nosec B310 # URL passed check_https_url, no redirect off https
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"the model hub answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        host = urllib.parse.urlparse(request.full_url).hostname
        raise DownloadError(f"could not reach {host} (offline?)") from exc


def _file_index(base: str, model_id: str, revision: str) -> dict[str, dict[str, Any]]:
    """Name -> {"Size", "Sha256"} from the hub's file listing."""
    query = urllib.parse.urlencode({"Revision": revision, "Recursive": "true"})
    url = f"{base}/api/v1/models/{model_id}/repo/files?{query}"
    with _open(urllib.request.Request(url)) as response:  # noqa: S310 - scheme checked
        try:
            listing = json.loads(response.read(4 << 20))
            files = listing["Data"]["Files"]
            return {f["Path"] if "Path" in f else f["Name"]: f for f in files}
        except (ValueError, KeyError, TypeError) as exc:
            raise DownloadError("the model hub sent an unexpected file listing") from exc


class _TooLarge(Exception):
    """The hub sent more bytes than its listing declared."""


def _receive(response: Any, out: Any, digest: Any, bar: Any, *, name: str, limit: int) -> None:
    """Copy the body of ``response`` to ``out``, at most ``limit`` bytes (what the listing
    declared, less what a resumed ``.part`` holds): one byte more is the hub's fault, not a
    reason to fill the disk.

    Raises:
        _TooLarge: the body is longer than ``limit``.
        DownloadError: the connection broke (the ``.part`` is kept: running again resumes).
        OSError: writing failed (disk full, ...).
    """
    written = 0
    while True:
        try:
            block = response.read1(min(BLOCK, limit - written + 1))
        except (OSError, ValueError, http.client.HTTPException) as exc:  # timeout, reset
            raise DownloadError(
                f"{name}: the connection broke after {written} bytes; run the command again "
                "to resume"
            ) from exc
        if not block:
            return
        written += len(block)
        if written > limit:
            raise _TooLarge
        out.write(block)
        digest.update(block)
        bar.update(len(block))


def _fetch(
    base: str, model_id: str, revision: str, name: str, dest: Path, expected: dict[str, Any]
) -> str:
    from tqdm import tqdm

    size = int(expected["Size"])
    final = dest / name
    partial = dest / f"{name}.part"
    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()
        have = 0
    query = urllib.parse.urlencode({"Revision": revision, "FilePath": name})
    url = f"{base}/api/v1/models/{model_id}/repo?{query}"
    request = urllib.request.Request(url)  # noqa: S310 - scheme checked
    if have:
        request.add_header("Range", f"bytes={have}-")
    digest = hashlib.sha256()
    with _open(request) as response:
        if have and response.status != 206:
            have = 0  # the server ignored the range: start again
        mode = "ab" if have else "wb"
        if have:
            with partial.open("rb") as previous:
                for block in iter(lambda: previous.read(BLOCK), b""):
                    digest.update(block)
        try:
            with (
                partial.open(mode) as out,
                tqdm(
                    total=size, initial=have, unit="B", unit_scale=True, desc=name, file=sys.stderr
                ) as bar,
            ):
                _receive(response, out, digest, bar, name=name, limit=size - have)
        except _TooLarge:
            partial.unlink(missing_ok=True)
            raise DownloadError(
                f"{name}: the model hub sent more than the {size} bytes it lists; the download "
                "was removed"
            ) from None
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DownloadError(
                f"{name}: could not be written ({exc.strerror or exc}); the download was removed"
            ) from None
    got = partial.stat().st_size
    if got != size:
        raise DownloadError(f"{name}: got {got} bytes, expected {size}; run the command again")
    sha = digest.hexdigest()
    wanted = str(expected.get("Sha256") or "").lower()
    if wanted and sha != wanted:
        partial.unlink()
        raise DownloadError(f"{name}: sha256 does not match the hub's; the download was removed")
    partial.replace(final)
    return sha


def download_model(
    dest: Path,
    *,
    base_url: str | None = None,
    revision: str | None = None,
    model: HubModel = HUB_MODELS[DEFAULT_HUB_MODEL],
) -> None:
    """Download the files of ``model`` (default: the multi-person one) into ``dest`` and
    write ``SHA256SUMS``.

    Args:
        revision: the hub revision; default ``model.revision``.

    Raises:
        DownloadError: network, HTTP, size or hash problem (one line).
    """
    base = _check_base_url(base_url or DEFAULT_BASE_URL)
    rev = revision or model.revision
    index = _file_index(base, model.model_id, rev)
    missing = [name for name in FILES if name not in index]
    if missing:
        raise DownloadError(f"the model hub does not list {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)
    sums = {name: _fetch(base, model.model_id, rev, name, dest, index[name]) for name in FILES}
    lines = "".join(f"{sha}  {name}\n" for name, sha in sums.items())
    (dest / CHECKSUMS_FILE).write_text(lines, encoding="utf-8")
