"""Operator alerts: a debounced POST of Slack-compatible JSON ``{"text": ...}`` to a webhook.

Alerts carry no personal data (no client, no image, no request details), only what an operator
needs to act. Webhook URLs usually embed a secret token, so the URL is never logged. Sending is
best effort: a short timeout, no redirects followed, failures logged, never raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from m2fp.url_policy import check_https_url

logger = logging.getLogger(__name__)

# At most one alert per this many seconds: an incident is reported, not narrated.
MIN_INTERVAL = 600.0
# Seconds for the whole POST; the webhook is somebody else's service and may hang.
TIMEOUT = 5.0


class AlertWebhook:
    """Posts alerts to one webhook, at most one per ``min_interval`` seconds.

    Raises:
        ValueError: ``url`` is not https (or http to this machine): ``check_https_url``.
    """

    def __init__(
        self,
        *,
        url: str,
        min_interval: float = MIN_INTERVAL,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = check_https_url(url)
        self._min_interval = min_interval
        self._timeout = timeout
        self._clock = clock
        self._last_attempt: float | None = None

    async def send(self, text: str) -> bool:
        """Post ``text`` unless an alert went out less than ``min_interval`` ago.

        A failed attempt counts for the debounce too, so a broken webhook is tried once per
        interval, not once per check.

        Returns:
            True if the webhook accepted the alert (2xx).
        """
        now = self._clock()
        if self._last_attempt is not None and now - self._last_attempt < self._min_interval:
            return False
        self._last_attempt = now
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
                response = await client.post(self._url, json={"text": text})
        except httpx.HTTPError as exc:
            logger.warning("alert webhook failed: %s", type(exc).__name__)
            return False
        if not response.is_success:
            logger.warning("alert webhook answered HTTP %d", response.status_code)
            return False
        return True
