"""The one place a parse runs: off the event loop, at most ``max_concurrency`` at a time.

Decoding, the network and PNG encoding are all CPU-bound, so the whole job runs in a worker
thread of the ``InferenceQueue``, which also bounds the wait queue and enforces the request
deadline (its ``Overloaded`` / ``InferenceTimeout`` become 503 with Retry-After in
``errors.py``). Routes only call ``ParseService.parse``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from m2fp.compute.memory import release_free_memory
from m2fp.errors import DeviceMemoryError, ImageError
from m2fp.imaging.decode_pool import DecodePool
from m2fp.predictor import HumanParser
from m2fp.server.errors import ApiError
from m2fp.server.ops.metrics import Metrics
from m2fp.server.parse.idle_release import IDLE_RELEASE_SECONDS, IdleRelease
from m2fp.server.parse.query import ParseQuery
from m2fp.server.parse.queue import InferenceQueue, InferenceTimeout, Reservation
from m2fp.server.parse.response import JSON_MEDIA_TYPE, PNG_MEDIA_TYPE, json_body, png_body
from m2fp.server.parse.upload_validator import Upload, decode_upload


@dataclass(frozen=True)
class Reply:
    """A rendered answer: body bytes and their media type."""

    body: bytes
    media_type: str


class ParseService:
    """Runs parses of validated uploads with bounded concurrency.

    Args:
        parser: the loaded model (thread-safe, shared).
        queue: bounds concurrent parses, waiting requests and their deadline.
        max_pixels: uploads declaring more pixels are refused before decoding.
        max_side: longer sides are scaled down to this before parsing.
        decoder: the worker processes that decode uploads (bounded, killable).
        metrics: where latency, queue depth and activity are recorded.
        release_device_memory: hands the GPU memory the parser's device caches back to the
            driver; called once no parse has run for ``idle_release_after`` seconds
            (``m2fp.server.parse.idle_release``).
        idle_release_after: idle seconds before that release.
    """

    def __init__(
        self,
        *,
        parser: HumanParser,
        queue: InferenceQueue,
        max_pixels: int,
        max_side: int,
        decoder: DecodePool,
        metrics: Metrics,
        release_device_memory: Callable[[], None] | None = None,
        idle_release_after: float = IDLE_RELEASE_SECONDS,
    ) -> None:
        self.parser = parser
        self.idle_release = (
            None
            if release_device_memory is None
            else IdleRelease(release_device_memory, after=idle_release_after)
        )
        self.queue = queue
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.decoder = decoder
        self.metrics = metrics
        metrics.queue_depth.set_function(lambda: queue.depth)

    def reserve(self) -> Reservation:
        """A place in the queue for a request about to read its upload (see ``parse``).

        Raises:
            Overloaded: the queue is full; nothing of the request has to be read.
        """
        return self.queue.reserve()

    async def parse(
        self,
        upload: Upload,
        query: ParseQuery,
        *,
        place: Reservation,
        as_png: bool,
        request_id: str,
    ) -> Reply:
        """Decode, parse and render one upload on its reserved ``place``, in a worker thread
        once a slot is free.

        Raises:
            UploadRejected: the image does not decode or has too many pixels.
            ApiError: ``device_out_of_memory``: the device has no memory for this image.
            InferenceTimeout: the deadline passed.
        """

        # the queue answers 503 ``timeout`` this long from now: the decode stops by then, and
        # a request answered meanwhile is not parsed at all
        answered_at = time.monotonic() + self.queue.timeout

        def job() -> Reply:
            self.metrics.inference_active.inc()
            if self.idle_release is not None:
                self.idle_release.begin()
            started = time.perf_counter()
            try:
                image = decode_upload(
                    upload,
                    decoder=self.decoder,
                    max_pixels=self.max_pixels,
                    max_side=self.max_side,
                    deadline_seconds=answered_at - time.monotonic(),
                )
                if time.monotonic() >= answered_at:
                    raise InferenceTimeout(retry_after=self.queue.retry_after())
                try:
                    result = self.parser.parse_upright(image)
                except DeviceMemoryError:
                    # the parser already handed the failed forward's memory back
                    raise ApiError("device_out_of_memory") from None
                except ImageError as exc:
                    # an OpenVINO package alone covers network inputs of 64-4096 a side
                    if exc.kind != "unsupported_shape":
                        raise
                    raise ApiError("unsupported_shape") from None
                del image
                if as_png:
                    reply = Reply(png_body(result, query), PNG_MEDIA_TYPE)
                else:
                    body = json_body(result, query, request_id=request_id)
                    reply = Reply(body, JSON_MEDIA_TYPE)
                del result
                return reply
            finally:
                # the photo, its masks and the activations are garbage now: hand the heap back
                release_free_memory()
                if self.idle_release is not None:
                    self.idle_release.end()
                self.metrics.inference_seconds.observe(time.perf_counter() - started)
                self.metrics.inference_active.dec()

        return await place.run(job)

    def close(self) -> None:
        """Stop taking parses (the queue), stop the decode workers and cancel a pending device
        memory release."""
        self.queue.close()
        self.decoder.close()
        if self.idle_release is not None:
            self.idle_release.close()
