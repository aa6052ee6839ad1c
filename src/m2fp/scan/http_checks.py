"""Checks over plain HTTP requests: transport security headers, browser isolation (CORS,
cross-site POST), what error answers give away, and redirects built from client input.

Each takes the ``Target`` and returns one ``CheckResult``; none spends upload quota.
"""

from __future__ import annotations

import json
import re

import httpx

from m2fp.scan.report import CheckResult
from m2fp.scan.target import FOREIGN_HOST, FOREIGN_ORIGIN, Target

MIN_HSTS_SECONDS = 365 * 86400
REQUIRED_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")
ERROR_KEYS = {"error", "message", "request_id"}
# a rejected upload that counts as a strike also says how many are left and how long the pause
STRIKE_KEYS = {"strikes_left", "ban_seconds"}
# what an error body or header must never name: software, versions, paths, stack frames
LEAKS = re.compile(
    r"traceback|file \"|site-packages|/usr/|/home/|\.py\b|uvicorn|starlette|fastapi|python|"
    r"nginx/\d|werkzeug|\bat 0x",
    re.IGNORECASE,
)
PARSE = "/api/v1/parse"


def _fail(name: str, detail: str) -> CheckResult:
    return CheckResult(name, False, detail)


def _pass(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def check_https_redirect(target: Target) -> CheckResult:
    """Plain HTTP answers only with a permanent redirect to https, to our own host."""
    name = "https_redirect"
    if not target.https:
        return _fail(name, "the deployment is served over plain http")
    if target.http_url is None:
        return _pass(name, "no plain-HTTP address given")
    try:
        with target.client() as client:
            plain = client.get(target.http_url + "/healthz")
            forged = client.get(target.http_url + "/healthz", headers={"Host": FOREIGN_HOST})
    except httpx.ConnectError:
        return _pass(name, "plain HTTP is closed")
    except httpx.HTTPError as exc:
        return _fail(name, f"plain HTTP did not answer ({type(exc).__name__})")
    location = plain.headers.get("location", "")
    if plain.status_code not in (301, 308) or not location.startswith("https://"):
        return _fail(name, f"plain HTTP answered {plain.status_code}, not a redirect to https")
    if FOREIGN_HOST in forged.headers.get("location", ""):
        return _fail(name, "the redirect is built from the client's Host header")
    return _pass(name, f"{plain.status_code} to {location.split('/healthz')[0]}")


def check_hsts(target: Target) -> CheckResult:
    """``Strict-Transport-Security`` of at least a year, on answers and on errors."""
    name = "hsts"
    if not target.https:
        return _fail(name, "no HSTS over plain http")
    with target.client() as client:
        answers = [client.get(target.url("/healthz")), client.get(target.url(f"/{target.marker}"))]
    for answer in answers:
        value = answer.headers.get("strict-transport-security", "")
        match = re.search(r"max-age=(\d+)", value)
        if match is None or int(match.group(1)) < MIN_HSTS_SECONDS:
            return _fail(name, f"HTTP {answer.status_code} without HSTS of a year or more")
    return _pass(name, value)


def check_security_headers(target: Target) -> CheckResult:
    """CSP, nosniff, Referrer-Policy and framing refused on pages, answers and errors; no
    software version in any header."""
    name = "security_headers"
    with target.client() as client:
        answers = [client.get(target.url(path)) for path in ("/", "/healthz", f"/{target.marker}")]
    for answer in answers:
        missing = [h for h in REQUIRED_HEADERS if h not in answer.headers]
        csp = answer.headers.get("content-security-policy", "")
        if "frame-ancestors" not in csp and "x-frame-options" not in answer.headers:
            missing.append("frame-ancestors or x-frame-options")
        if missing:
            path = answer.request.url.path
            return _fail(name, f"{path} (HTTP {answer.status_code}) lacks {', '.join(missing)}")
        for header in ("server", "x-powered-by"):
            value = answer.headers.get(header, "")
            if re.search(r"\d", value) or LEAKS.search(value):
                return _fail(name, f"the {header} header names the software")
    return _pass(name, "CSP, nosniff, Referrer-Policy, framing refused, no versions")


def check_cors(target: Target) -> CheckResult:
    """A foreign origin gets no CORS grant, for a preflight or a plain request."""
    name = "cors"
    with target.client() as client:
        preflight = client.options(
            target.url(PARSE),
            headers={"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        plain = client.get(target.url("/api/v1/classes"), headers={"Origin": FOREIGN_ORIGIN})
    for answer in (preflight, plain):
        granted = answer.headers.get("access-control-allow-origin")
        if granted in ("*", FOREIGN_ORIGIN):
            return _fail(name, f"{answer.request.method} grants the foreign origin ({granted})")
        if answer.headers.get("access-control-allow-credentials", "").lower() == "true":
            return _fail(name, f"{answer.request.method} allows credentials")
    if preflight.is_success:
        return _fail(name, f"the foreign preflight was accepted ({preflight.status_code})")
    return _pass(name, f"foreign origin refused (preflight {preflight.status_code})")


def check_cross_site_post(target: Target) -> CheckResult:
    """A browser POST from another site is refused before its body is used (CSRF)."""
    name = "cross_site_post"
    headers = {
        "Origin": FOREIGN_ORIGIN,
        "Sec-Fetch-Site": "cross-site",
        "Content-Type": "image/png",
        **target.key_headers(),
    }
    with target.client() as client:
        answer = client.post(target.url(PARSE), content=b"\x89PNG\r\n\x1a\n", headers=headers)
    reason = error_reason(answer.text)
    if answer.status_code != 403 or reason != "forbidden_origin":
        return _fail(name, f"cross-site POST answered {answer.status_code} {reason}")
    return _pass(name, "403 forbidden_origin")


def check_error_bodies(target: Target) -> CheckResult:
    """Errors (from the service and from the proxy) are the JSON contract and give nothing
    away: no echo of the request, no software, version, path or stack."""
    name = "error_bodies"
    probes = [
        ("GET", f"/{target.marker}/x.php?{target.marker}=1", 404),
        ("DELETE", PARSE, 405),
        ("TRACE", "/", 405),
    ]
    with target.client() as client:
        for method, path, status in probes:
            answer = client.request(method, target.url(path))
            problem = _error_problem(answer, target.marker)
            if problem or answer.status_code != status:
                seen = problem or f"answered {answer.status_code}, expected {status}"
                return _fail(name, f"{method} {path.split('?')[0]}: {seen}")
    return _pass(name, "404, 405 and TRACE are JSON errors that repeat nothing")


def check_trailing_slash(target: Target) -> CheckResult:
    """A trailing slash is an unknown path, never a redirect (which clients follow, re-sending
    the photo wherever the Location says)."""
    name = "trailing_slash"
    with target.client() as client:
        answers = [
            client.post(target.url(PARSE + "/"), content=b"", headers=target.key_headers()),
            client.get(target.url("/healthz/")),
        ]
    for answer in answers:
        if answer.is_redirect or "location" in answer.headers:
            where = answer.headers.get("location", "")
            return _fail(
                name, f"{answer.request.url.path} redirects ({answer.status_code} {where})"
            )
    return _pass(name, f"no redirect ({', '.join(str(a.status_code) for a in answers)})")


def check_host_header(target: Target) -> CheckResult:
    """Nothing is built from a forged ``Host``: no redirect to it, no echo of it."""
    name = "host_header"
    with target.client() as client:
        answers = [
            client.get(target.url(path), headers={"Host": FOREIGN_HOST})
            for path in ("/healthz/", "/", f"/{target.marker}")
        ]
    for answer in answers:
        if FOREIGN_HOST in answer.headers.get("location", "") or FOREIGN_HOST in answer.text:
            return _fail(name, f"{answer.request.url.path} reflects the forged Host")
    return _pass(name, "forged Host is neither followed nor repeated")


def json_body(text: str) -> object | None:
    """An answer's body parsed as JSON; None where it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def error_reason(text: str) -> str:
    """The ``error`` reason of an answer's body, or what the body is instead, for a check's
    one-line verdict."""
    try:
        body = json.loads(text)
    except ValueError:
        return "(not JSON)"
    return str(body.get("error")) if isinstance(body, dict) else "(not an error body)"


def _error_problem(answer: httpx.Response, marker: str) -> str | None:
    """What is wrong with an error answer, None if nothing."""
    if marker in answer.text or marker in json.dumps(dict(answer.headers)):
        return "the answer repeats the request"
    if LEAKS.search(answer.text):
        return "the answer names software, a path or a stack frame"
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code} is not JSON"
    if not is_error_contract(body):
        return f"HTTP {answer.status_code} is not the error contract"
    return None


def is_error_contract(body: object) -> bool:
    """The service's error body: the three keys, and the strike fields both or neither."""
    if not isinstance(body, dict):
        return False
    keys = set(body)
    return keys - STRIKE_KEYS == ERROR_KEYS and keys & STRIKE_KEYS in (set(), STRIKE_KEYS)
