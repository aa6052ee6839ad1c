"""The one place a parse runs: off the event loop, at most ``max_concurrency`` at a time.

Decoding, the network and PNG encoding are all CPU-bound, so the whole job runs in a worker
thread of the ``InferenceQueue``, which also bounds the wait queue and enforces the request
deadline (503 ``overloaded`` / ``timeout`` with Retry-After). Routes only call
``Inference.parse``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from m2fp.memory import release_free_memory
from m2fp.predictor import HumanParser
from m2fp.server.errors import ApiError
from m2fp.server.ops.metrics import Metrics
from m2fp.server.parse.query import ParseQuery
from m2fp.server.parse.queue import InferenceQueue, InferenceTimeout, Overloaded
from m2fp.server.parse.response import json_body, png_body
from m2fp.server.parse.upload_reader import Upload, decode_upload

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """A rendered answer: body bytes and their media type."""

    body: bytes
    media_type: str


class Inference:
    """Runs parses of validated uploads with bounded concurrency.

    Args:
        parser: the loaded model (thread-safe, shared).
        queue: bounds concurrent parses, waiting requests and their deadline.
        max_pixels: uploads declaring more pixels are refused before decoding.
        max_side: longer sides are scaled down to this before parsing.
        metrics: where latency, queue depth and activity are recorded.
    """

    def __init__(
        self,
        *,
        parser: HumanParser,
        queue: InferenceQueue,
        max_pixels: int,
        max_side: int,
        metrics: Metrics,
    ) -> None:
        self.parser = parser
        self.queue = queue
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.metrics = metrics
        metrics.queue_depth.set_function(lambda: queue.depth)

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` in a worker thread once a slot is free.

        Raises:
            ApiError: ``overloaded`` (queue full) or ``timeout`` (deadline), with Retry-After.
        """
        try:
            return await self.queue.run(job)
        except Overloaded as exc:
            headers = {"Retry-After": str(exc.retry_after)}
            raise ApiError("overloaded", headers=headers) from None
        except InferenceTimeout as exc:
            raise ApiError("timeout", headers={"Retry-After": str(exc.retry_after)}) from None

    async def parse(
        self, upload: Upload, query: ParseQuery, *, as_png: bool, request_id: str
    ) -> Reply:
        """Decode, parse and render one upload.

        Raises:
            UploadRejected: the image does not decode or has too many pixels.
        """

        def job() -> Reply:
            self.metrics.inference_active.inc()
            started = time.perf_counter()
            try:
                image = decode_upload(upload, max_pixels=self.max_pixels, max_side=self.max_side)
                result = self.parser(image)
                del image
                if as_png:
                    reply = Reply(png_body(result, query), "image/png")
                else:
                    body = json_body(result, query, request_id=request_id)
                    reply = Reply(body, "application/json")
                del result
                return reply
            finally:
                # the photo, its masks and the activations are garbage now: hand the heap back
                release_free_memory()
                self.metrics.inference_seconds.observe(time.perf_counter() - started)
                self.metrics.inference_active.dec()

        return await self.run(job)
