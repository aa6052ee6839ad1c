"""The hostile-upload probes: each must be refused with its own 4xx and reason, in the error
contract, repeating nothing of the request (the file name carries the scan's marker).

They spend the scanner's quota and earn it strikes, so they are paced like a careful client:
a good upload after every ``STRIKES_BEFORE_RESET`` refusals clears the strikes before the
default ban (3 in a row) would, a 429 is waited out (its ``Retry-After``, up to
``MAX_WAIT`` seconds) and retried, and the run ends with a good upload.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from m2fp.scan.corpus import OVERSIZE_BYTES, HostileUpload, good_png, hostile_uploads
from m2fp.scan.http_checks import is_error_contract
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

    def post(self, filename: str, content: bytes, client: httpx.Client) -> httpx.Response:
        files = {"image": (filename, content, "application/octet-stream")}
        for _ in range(MAX_RETRIES):
            answer = client.post(
                self.target.url(PARSE), files=files, headers=self.target.key_headers()
            )
            if answer.status_code != 429:
                return answer
            wait = float(answer.headers.get("retry-after", "5") or 5)
            if wait > MAX_WAIT:
                return answer
            self.sleep(wait + 0.5)
        return answer


def _judge(probe: HostileUpload, answer: httpx.Response, marker: str) -> CheckResult:
    try:
        body = answer.json()
    except ValueError:
        body = None
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
            answer = probe.post(f"{target.marker}{upload.filename_suffix}", upload.content, client)
            results.append(_judge(upload, answer, target.marker))
        good.append(_good(probe, client, target))
    results.append(check_oversize(target))
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


def check_oversize(target: Target) -> CheckResult:
    """A body declared larger than any upload is refused 413 from its headers alone."""
    name = "upload_oversize"
    scheme, host, port = target.parts
    path = urlsplit(target.base).path + PARSE
    connection: http.client.HTTPConnection
    if scheme == "https":
        verify = target.verify()
        context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
        connection = http.client.HTTPSConnection(
            host, port, timeout=target.timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=target.timeout)
    try:
        connection.putrequest("POST", path)
        for header, value in target.key_headers().items():
            connection.putheader(header, value)
        connection.putheader("Content-Type", "image/png")
        connection.putheader("Content-Length", str(OVERSIZE_BYTES))
        connection.endheaders()
        connection.send(b"\x89PNG\r\n\x1a\n")
        answer = connection.getresponse()
        status, text = answer.status, answer.read(65536).decode("utf-8", "replace")
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        return CheckResult(name, False, f"no answer before the body ({type(exc).__name__})")
    finally:
        connection.close()
    try:
        reason = json.loads(text).get("error")
    except (ValueError, AttributeError):
        reason = "(not JSON)"
    if (status, reason) != (413, "payload_too_large"):
        return CheckResult(name, False, f"{status} {reason}, expected 413 payload_too_large")
    return CheckResult(name, True, "413 payload_too_large before the body was sent")
