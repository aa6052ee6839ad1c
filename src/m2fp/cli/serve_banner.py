"""The one human line ``m2fp serve`` prints on a terminal before its JSON logs: where the WebUI
and the API are, and the settings a newcomer trips over (docs off, the rate limit, an API key).

Only when stderr is a terminal and ``--log-format`` is ``auto``: a process manager, a
container or ``--log-format json`` gets the JSON lines alone, which log collectors parse.
Standard library only at import time (the argument parser reads ``LOG_FORMATS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # ``m2fp --help`` lists LOG_FORMATS without importing the server
    from m2fp.server.settings import Settings

LOG_FORMATS = ("auto", "json")
DEFAULT_LOG_FORMAT = "auto"


def wants_banner(log_format: str, stream: TextIO) -> bool:
    """The banner goes to ``stream`` when the format is ``auto`` and it is a terminal."""
    return log_format == "auto" and stream.isatty()


def banner_line(url: str, settings: Settings) -> str:
    """``WebUI and API on http://127.0.0.1:8000 — docs off, rate limit 5/minute``."""
    facts = [
        f"docs on {url}/docs" if settings.docs else "docs off (M2FP_DOCS=true turns them on)",
        f"rate limit {settings.rate_limit} per address",
    ]
    if settings.api_keys_required:
        facts.append("an API key is required")
    return f"m2fp: WebUI and API on {url} — {', '.join(facts)}; Ctrl-C stops"
