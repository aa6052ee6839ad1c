"""Prometheus metrics of one app, in its own registry. Labels never identify a client."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

# seconds; the tiny test model answers in milliseconds, R101 on CPU in seconds
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Requests by route template and status, rejections by reason, inference latency,
    queue depth and process memory (``process_resident_memory_bytes``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "m2fp_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "m2fp_rejections",
            "Refused requests by error reason.",
            ["reason"],
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "m2fp_inference_seconds",
            "Time to decode, parse and render one image.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "m2fp_queue_depth",
            "Parse requests waiting for an inference slot.",
            registry=self.registry,
        )
        self.inference_active = Gauge(
            "m2fp_inference_in_progress", "Parse requests being computed.", registry=self.registry
        )
        self.memory_used_ratio = Gauge(
            "m2fp_memory_used_ratio",
            "Memory in use over its limit, as the memory watchdog sees it.",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
