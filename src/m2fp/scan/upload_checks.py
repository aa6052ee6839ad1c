"""The hostile-upload probes: each must be refused with its own 4xx and reason, in the error
contract, repeating nothing of the request (the file name carries the scan's marker). Two
more must merely be survived: a flat PNG of 50 megapixels in 150 KB (parsed, or refused in
the contract, never a 5xx), and a body sent in 1-byte chunks (411 at a replica, which refuses
chunked bodies; 200 behind a proxy that de-chunks it).

They spend the scanner's quota and earn it strikes, so they are paced like a careful client:
a good upload after every ``STRIKES_BEFORE_RESET`` refusals clears the strikes before the
default ban (3 in a row) would, a 429 is waited out (its ``Retry-After``, up to
``MAX_WAIT`` seconds) and retried, and the run ends with a good upload.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from m2fp.scan.corpus import (
    OVERSIZE_BYTES,
    HostileUpload,
    framed_body,
    good_png,
    hostile_uploads,
)
from m2fp.scan.hostile_images import flat_png
from m2fp.scan.http_checks import error_reason, is_error_contract, json_body
from m2fp.scan.report import CheckResult
from m2fp.scan.target import Target

PARSE = "/api/v1/parse"
STRIKES_BEFORE_RESET = 2
MAX_WAIT = 75.0
MAX_RETRIES = 3


class UploadProbe:
    """Sends uploads for one scan, waiting out rate limits."""

    def __init__(self, target: Target, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self.sleep = sleep

    def post(
        self, filename: str, content: bytes, client: httpx.Client, *, framing: str = "plain"
    ) -> httpx.Response:
        files = {"image": (filename, content, "application/octet-stream")}
        headers = self.target.key_headers()
        body = None
        if framing != "plain":
            content_type, body = framed_body(framing, content, filename)
            headers = {**headers, "Content-Type": content_type}
        for _ in range(MAX_RETRIES):
            if body is None:
                answer = client.post(self.target.url(PARSE), files=files, headers=headers)
            else:
                answer = client.post(self.target.url(PARSE), content=body, headers=headers)
            if answer.status_code != 429:
                return answer
            wait = float(answer.headers.get("retry-after", "5") or 5)
            if wait > MAX_WAIT:
                return answer
            self.sleep(wait + 0.5)
        return answer


def _judge(probe: HostileUpload, answer: httpx.Response, marker: str) -> CheckResult:
    body = json_body(answer.text)
    if marker in answer.text:
        return CheckResult(probe.name, False, "the answer repeats the file name")
    if answer.status_code == 403 and isinstance(body, dict) and body.get("error") == "banned":
        return CheckResult(probe.name, False, "the scanner is banned: scan with an API key")
    if not is_error_contract(body):
        return CheckResult(
            probe.name, False, f"HTTP {answer.status_code} is not the error contract"
        )
    got = f"{answer.status_code} {body['error']}"
    if (answer.status_code, body["error"]) != (probe.status, probe.reason):
        return CheckResult(probe.name, False, f"{got}, expected {probe.status} {probe.reason}")
    return CheckResult(probe.name, True, got)


def check_hostile_uploads(target: Target) -> list[CheckResult]:
    """Each corpus file refused as it must be; a good upload parsed between them."""
    probe = UploadProbe(target)
    results, good = [], []
    with target.client() as client:
        for index, upload in enumerate(hostile_uploads()):
            if index and index % STRIKES_BEFORE_RESET == 0:
                good.append(_good(probe, client, target))
            filename = f"{target.marker}{upload.filename_suffix}"
            answer = probe.post(filename, upload.content, client, framing=upload.framing)
            results.append(_judge(upload, answer, target.marker))
        good.append(_good(probe, client, target))
        results.append(_flat_png_survived("upload_flat_png", probe, client, target))
    results.append(check_oversize(target))
    results.append(check_chunked_trickle(target))
    # one line for the good uploads: the first that failed, else the first
    results.append(next((r for r in good if not r.passed), good[0]))
    return results


def _good(probe: UploadProbe, client: httpx.Client, target: Target) -> CheckResult:
    answer = probe.post(f"{target.marker}.png", good_png(), client)
    if answer.status_code != 200:
        return CheckResult("upload_good", False, f"a valid PNG answered {answer.status_code}")
    if target.marker in answer.text:
        return CheckResult("upload_good", False, "the answer repeats the file name")
    return CheckResult("upload_good", True, "a valid PNG is parsed (200)")


def _flat_png_survived(
    name: str, probe: UploadProbe, client: httpx.Client, target: Target
) -> CheckResult:
    """A flat 7071x7071 PNG (~150 KB, 150 MB decoded): parsed, or refused in the contract."""
    try:
        answer = probe.post(f"{target.marker}.png", flat_png(), client)
    except httpx.HTTPError as exc:
        return CheckResult(name, False, f"no answer ({type(exc).__name__})")
    if answer.status_code == 200:
        return CheckResult(name, True, "a flat 50-megapixel PNG is parsed (200)")
    body = json_body(answer.text)
    if answer.status_code >= 500 or not is_error_contract(body):
        return CheckResult(name, False, f"a flat 50-megapixel PNG answered {answer.status_code}")
    return CheckResult(name, True, f"a flat 50-megapixel PNG is refused ({body['error']})")


def _connection(target: Target) -> http.client.HTTPConnection:
    scheme, host, port = target.parts
    if scheme == "https":
        verify = target.verify()
        context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=target.timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=target.timeout)


def _begin_parse_post(
    connection: http.client.HTTPConnection, target: Target, headers: dict[str, str]
) -> None:
    """Send the head of a ``POST`` to the parse route by hand (the probes then write the body
    their own way): the target's API key headers, then ``headers``."""
    connection.putrequest("POST", urlsplit(target.base).path + PARSE)
    for header, value in {**target.key_headers(), **headers}.items():
        connection.putheader(header, value)
    connection.endheaders()


def check_chunked_trickle(target: Target) -> CheckResult:
    """A PNG sent as ``Transfer-Encoding: chunked`` in 1-byte chunks (a few hundred of
    them: the probe is bounded; the attack's two 2 MB bodies starved a replica's event loop):
    411 ``length_required`` from a replica, or 200 behind a proxy that de-chunks it."""
    name = "upload_chunked_trickle"
    connection = _connection(target)
    try:
        _begin_parse_post(
            connection, target, {"Content-Type": "image/png", "Transfer-Encoding": "chunked"}
        )
        try:
            for byte in good_png():
                connection.send(b"1\r\n" + bytes([byte]) + b"\r\n")
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body: its answer is waiting
        answer = connection.getresponse()
        status, text = answer.status, answer.read(1 << 20).decode("utf-8", "replace")
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        return CheckResult(name, False, f"no answer ({type(exc).__name__})")
    finally:
        connection.close()
    if status == 200:
        return CheckResult(name, True, "a 1-byte-chunked body is de-chunked and parsed (200)")
    reason = error_reason(text)
    if (status, reason) != (411, "length_required"):
        return CheckResult(name, False, f"{status} {reason}, expected 411 length_required or 200")
    return CheckResult(name, True, "411 length_required for a chunked body")


def check_oversize(target: Target) -> CheckResult:
    """A body declared larger than any upload is refused 413 from its headers alone."""
    name = "upload_oversize"
    connection = _connection(target)
    try:
        _begin_parse_post(
            connection,
            target,
            {"Content-Type": "image/png", "Content-Length": str(OVERSIZE_BYTES)},
        )
        connection.send(b"\x89PNG\r\n\x1a\n")
        answer = connection.getresponse()
        status, text = answer.status, answer.read(65536).decode("utf-8", "replace")
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        return CheckResult(name, False, f"no answer before the body ({type(exc).__name__})")
    finally:
        connection.close()
    reason = error_reason(text)
    if (status, reason) != (413, "payload_too_large"):
        return CheckResult(name, False, f"{status} {reason}, expected 413 payload_too_large")
    return CheckResult(name, True, "413 payload_too_large before the body was sent")
