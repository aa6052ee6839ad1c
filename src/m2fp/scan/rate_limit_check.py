"""The per-client rate limit, from outside: it spends the scanner's whole quota, so it runs
only when asked (``m2fp scan --check-rate-limit``).

The probes are parse requests with an invalid query (``alpha=2``): the guard counts them
before the query is judged, they are refused 400 without a strike, and no upload is sent.
"""

from __future__ import annotations

from m2fp.scan.report import CheckResult
from m2fp.scan.target import Target

PARSE = "/api/v1/parse"
MAX_PROBES = 200


def check_rate_limit(target: Target) -> CheckResult:
    """A 429 ``rate_limited`` with ``Retry-After`` comes within ``MAX_PROBES`` requests."""
    name = "rate_limit"
    with target.client() as client:
        for sent in range(1, MAX_PROBES + 1):
            answer = client.post(
                target.url(PARSE),
                params={"alpha": "2"},
                content=b"",
                headers={"Content-Type": "image/png", **target.key_headers()},
            )
            if answer.status_code == 429:
                if not answer.headers.get("retry-after", "").isdigit():
                    return CheckResult(name, False, "429 without a Retry-After in seconds")
                return CheckResult(name, True, f"429 after {sent} requests")
    return CheckResult(name, False, f"no 429 after {MAX_PROBES} requests")
