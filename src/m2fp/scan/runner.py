"""The checks of a scan, by name, and the run that collects their results.

A check that raises (the deployment went away, a TLS failure httpx reports) fails with the
exception's type named, never its text (which may hold a URL with a token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import httpx

from m2fp.scan import http_checks, tls_checks, upload_checks
from m2fp.scan.rate_limit_check import check_rate_limit
from m2fp.scan.report import CheckResult, ScanReport
from m2fp.scan.target import Target

Check = Callable[[Target], CheckResult | list[CheckResult]]

# In the order they run: the ones that spend upload quota last.
CHECKS: dict[str, Check] = {
    "https_redirect": http_checks.check_https_redirect,
    "hsts": http_checks.check_hsts,
    "tls_protocols": tls_checks.check_tls_protocols,
    "tls_ciphers": tls_checks.check_tls_ciphers,
    "security_headers": http_checks.check_security_headers,
    "cors": http_checks.check_cors,
    "cross_site_post": http_checks.check_cross_site_post,
    "error_bodies": http_checks.check_error_bodies,
    "trailing_slash": http_checks.check_trailing_slash,
    "host_header": http_checks.check_host_header,
    "hostile_uploads": upload_checks.check_hostile_uploads,
    "rate_limit": check_rate_limit,
}
# spends the scanner's whole quota: only when asked
OPT_IN = frozenset({"rate_limit"})


def default_checks() -> list[str]:
    return [name for name in CHECKS if name not in OPT_IN]


def run_scan(target: Target, checks: Iterable[str]) -> ScanReport:
    """Run ``checks`` (names of ``CHECKS``) against ``target``, in ``CHECKS`` order.

    Raises:
        ValueError: an unknown check name.
    """
    wanted = list(checks)
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; known: {', '.join(CHECKS)}")
    report = ScanReport(target=target.base)
    for name, check in CHECKS.items():
        if name not in wanted:
            continue
        try:
            outcome = check(target)
        except (httpx.HTTPError, OSError) as exc:
            outcome = CheckResult(name, False, f"could not complete ({type(exc).__name__})")
        report.results.extend(outcome if isinstance(outcome, list) else [outcome])
    return report
