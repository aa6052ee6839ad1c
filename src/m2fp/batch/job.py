"""One batch job, driver side: list the inputs, leave out those with a complete output
(resume), size the actor pool to the cluster (actors x threads fit its CPUs; a GPU per actor
where the cluster has them), stream the inputs through ``ParseActor``s with Ray Data
(``map_batches``, its progress bars), and record failures and the closing summary.

Without a Ray address a local Ray is started on this machine (its CPUs: the cgroup quota or
affinity ``m2fp.compute.threads`` reads) and stopped after; with one (``auto``,
``ray://HOST:PORT``) the job joins that cluster. A Python caller that already ran
``ray.init`` keeps its Ray: the job neither starts nor stops one then.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2fp.batch.actor import ActorConfig, ParseActor
from m2fp.batch.errors import BatchError, BatchRunError
from m2fp.batch.outputs import check_form, done_stems, remove_stale_temporaries, write_failures
from m2fp.batch.sources import list_sources
from m2fp.compute.threads import plan_threads
from m2fp.defaults import DEFAULT_ACTOR_START_TIMEOUT_S
from m2fp.errors import M2FPError

# inputs per actor call: small enough that an interrupted job loses little, large enough
# that the parser's own batching (``parse_in_batches``) has photos to group
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class BatchJob:
    """A batch job as the command line describes it.

    Attributes:
        source: SRC (a folder, a list of paths, an image, or a filesystem URI of one).
        actor: what each actor is built with (model, key file, options, outputs).
        actors: actors in the pool.
        gpus_per_actor: GPUs each actor takes; None: one where the cluster has a GPU for
            every actor, else none.
        threads: CPU threads per actor; None: the cluster's CPUs divided among the actors.
        skip_existing: leave out inputs whose output is complete (resume).
        ray_address: the cluster to join; None starts a local Ray for the job.
        batch_size: inputs per actor call at most (see ``batch_size``).
        actor_start_timeout: seconds the actor pool may take to start (every actor placed
            and its model loaded) before the job fails with ``BatchRunError``.
    """

    source: str
    actor: ActorConfig
    actors: int = 1
    gpus_per_actor: float | None = None
    threads: int | None = None
    skip_existing: bool = False
    ray_address: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    actor_start_timeout: float = DEFAULT_ACTOR_START_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.actor_start_timeout > 0:  # also refuses nan
            raise ValueError("actor_start_timeout must be a positive number of seconds")


@dataclass
class Summary:
    """What a job did: inputs found, parsed, skipped (complete already) and failed, its wall
    time, and per actor (``host:pid``) its peak memory (bytes), threads, model load (the
    fixed cost, s) and busy time on its inputs (s); the Ray start (s, 0 when joining one).

    The wall time of a short job is mostly fixed costs (Ray's start, each actor's start and
    model load); ``steady_images_per_second`` is the pool's rate once running: the sum over
    actors of their inputs per busy second.
    """

    images: int = 0
    parsed: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    ray_start_seconds: float = 0.0
    actor_peak_rss: dict[str, int] = field(default_factory=dict)
    actor_threads: dict[str, int] = field(default_factory=dict)
    actor_load_seconds: dict[str, float] = field(default_factory=dict)
    actor_busy_seconds: dict[str, float] = field(default_factory=dict)
    actor_inputs: dict[str, int] = field(default_factory=dict)

    def record(self, row: dict[str, Any]) -> None:
        """Take in one status row of an actor (``ParseActor.__call__``)."""
        actor = str(row["actor"])
        rss = int(row["peak_rss_bytes"])
        self.actor_peak_rss[actor] = max(rss, self.actor_peak_rss.get(actor, 0))
        self.actor_threads[actor] = int(row["threads"])
        self.actor_load_seconds[actor] = float(row["load_seconds"])
        self.actor_busy_seconds[actor] = self.actor_busy_seconds.get(actor, 0.0) + float(
            row["seconds"]
        )
        self.actor_inputs[actor] = self.actor_inputs.get(actor, 0) + 1

    @property
    def steady_images_per_second(self) -> float:
        return sum(
            self.actor_inputs[actor] / busy
            for actor, busy in self.actor_busy_seconds.items()
            if busy > 0
        )

    def as_dict(self) -> dict[str, Any]:
        def per_actor(values: dict[str, Any], scale: float = 1.0, digits: int = 3) -> dict:
            return {actor: round(value / scale, digits) for actor, value in sorted(values.items())}

        return {
            "images": self.images,
            "parsed": self.parsed,
            "skipped": self.skipped,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.parsed / self.seconds, 3) if self.seconds else 0.0,
            "steady_images_per_second": round(self.steady_images_per_second, 3),
            "ray_start_seconds": round(self.ray_start_seconds, 3),
            "actor_load_seconds": per_actor(self.actor_load_seconds),
            "actor_threads": dict(sorted(self.actor_threads.items())),
            "actor_peak_rss_mib": per_actor(self.actor_peak_rss, 2**20, 1),
        }

    def line(self) -> str:
        """The closing summary line."""
        facts = self.as_dict()
        memory = ", ".join(f"{mib:.0f}" for mib in facts["actor_peak_rss_mib"].values()) or "-"
        load = max(self.actor_load_seconds.values(), default=0.0)
        return (
            f"{self.images} images: {self.parsed} parsed, {self.skipped} skipped, "
            f"{self.failed} failed in {facts['seconds']:.1f} s "
            f"({facts['images_per_second']:.2f} images/s; steady "
            f"{facts['steady_images_per_second']:.2f} images/s after "
            f"{self.ray_start_seconds:.1f} s Ray start and {load:.1f} s model load); "
            f"actor peak memory MiB: {memory}"
        )


def batch_size(job: BatchJob, inputs: int) -> int:
    """Inputs per actor call: ``job.batch_size``, but no more than an equal share of the
    inputs per actor, so that a short job still gives every actor work (8 inputs in calls of
    8 would all go to one of two actors, the other idle)."""
    return max(1, min(job.batch_size, -(-inputs // job.actors)))


def _pool_size(job: BatchJob, resources: dict[str, float]) -> tuple[int, float]:
    """Threads and GPUs per actor on a cluster with ``resources``.

    Raises:
        BatchError: the actors would need more CPUs or GPUs than the cluster has (Ray would
            wait for them forever).
    """
    cpus = int(resources.get("CPU", 0))
    threads = job.threads or max(1, cpus // job.actors)
    if job.actors * threads > cpus:
        raise BatchError(
            f"{job.actors} actors x {threads} threads need {job.actors * threads} CPUs; "
            f"the Ray cluster has {cpus} (use fewer --actors or --threads)"
        )
    gpus = resources.get("GPU", 0.0)
    per_actor = job.gpus_per_actor
    if per_actor is None:
        per_actor = 1.0 if gpus >= job.actors else 0.0
    if job.actors * per_actor > gpus:
        raise BatchError(
            f"{job.actors} actors x {per_actor:g} GPUs need {job.actors * per_actor:g} GPUs; "
            f"the Ray cluster has {gpus:g}"
        )
    return threads, per_actor


def run_batch(job: BatchJob) -> Summary:
    """Run ``job`` to the end; failures are recorded, never raised.

    Raises:
        BatchError: the job cannot start (see ``list_sources``, ``check_form``,
            ``_pool_size``).
        BatchRunError: the actor pool did not start within ``job.actor_start_timeout``, or
            an actor failed (its model did not load): one line saying why, not Ray's
            traceback.
    """
    import ray

    started = time.perf_counter()
    out_dir = Path(job.actor.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_form(out_dir, job.actor.form, skip_existing=job.skip_existing)
    if job.skip_existing:
        remove_stale_temporaries(out_dir)
    sources, refusals = list_sources(
        job.source, out_dir=out_dir, follow_symlinks=job.actor.follow_symlinks
    )
    done = (
        done_stems(out_dir, job.actor.form, job.actor.plan, (s.stem for s in sources))
        if job.skip_existing
        else set()
    )
    todo = [source for source in sources if source.stem not in done]
    summary = Summary(images=len(sources) + len(refusals), skipped=len(sources) - len(todo))
    failures = [{"path": r.path, "code": r.code, "message": r.message} for r in refusals]
    ours = not ray.is_initialized()
    if ours:
        # a local Ray for this job alone: this machine's CPUs, no dashboard
        local = (
            {}
            if job.ray_address
            else {"num_cpus": plan_threads().threads, "include_dashboard": False}
        )
        ray_started = time.perf_counter()
        ray.init(address=job.ray_address, logging_level="WARNING", log_to_driver=False, **local)
        summary.ray_start_seconds = time.perf_counter() - ray_started
    try:
        threads, gpus = _pool_size(job, ray.cluster_resources())
        if todo:
            config = dataclasses.replace(
                job.actor, options=dataclasses.replace(job.actor.options, threads=threads)
            )
            # the pool starts handing out calls once every actor has loaded its model: one
            # in flight per actor is not enough on its own, since an actor ready first would
            # take each call in turn while the other is still loading
            ray.data.DataContext.get_current().wait_for_min_actors_s = job.actor_start_timeout
            statuses = ray.data.from_items([dataclasses.asdict(s) for s in todo]).map_batches(
                ParseActor,
                fn_constructor_kwargs={"config": config},
                # one call in flight per actor: an actor that is ready first (its model
                # loaded) must not queue the calls of one still loading, or a short job
                # runs on one actor while the other idles
                compute=ray.data.ActorPoolStrategy(
                    size=job.actors, max_tasks_in_flight_per_actor=1
                ),
                num_cpus=threads,
                num_gpus=gpus,
                batch_size=batch_size(job, len(todo)),
                batch_format="numpy",
            )
            for row in _rows_or_one_line(statuses, job):
                summary.record(row)
                if row["status"] == "ok":
                    summary.parsed += 1
                else:
                    failures.append(
                        {"path": row["path"], "code": row["code"], "message": row["message"]}
                    )
    finally:
        if ours:
            ray.shutdown()
    summary.failed = len(failures)
    write_failures(out_dir, failures)
    summary.seconds = time.perf_counter() - started
    return summary


def _rows_or_one_line(statuses: Any, job: BatchJob) -> Iterator[dict[str, Any]]:
    """The job's status rows as Ray Data hands them back; a pool that did not start in time
    or an actor that failed is ``BatchRunError`` with one line, not Ray's traceback."""
    import ray

    try:
        with _failures_off_the_terminal():
            yield from statuses.iter_rows()
    except ray.exceptions.GetTimeoutError:
        raise BatchRunError(
            f"the actor pool did not start within {job.actor_start_timeout:g} s "
            f"({job.actors} actor(s), each loading the model): the cluster may lack "
            "the CPUs, GPUs or memory they ask for (--actor-start-timeout waits longer)"
        ) from None
    except ray.exceptions.RayError as exc:
        raise BatchRunError(actor_failure(exc)) from None


def _is_terminal(handler: logging.Handler) -> bool:
    return getattr(handler, "stream", None) in (sys.stderr, sys.stdout)


@contextmanager
def _failures_off_the_terminal() -> Iterator[None]:
    """Ray Data logs a failure it is about to raise (an actor pool that did not start, an
    actor that failed) to the terminal, with its traceback; ``run_batch`` reports each one
    itself in one line (``BatchRunError``). While the job runs, Ray Data's ERROR records go
    to its log file only (``/tmp/ray/session_*/logs/ray-data``), not to the terminal."""
    consoles = [h for h in logging.getLogger("ray.data").handlers if _is_terminal(h)]

    def below_error(record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR

    for handler in consoles:
        handler.addFilter(below_error)
    try:
        yield
    finally:
        for handler in consoles:
            handler.removeFilter(below_error)


_OWN_ERROR_PREFIX = re.compile(r"^m2fp(?:\.\w+)+: ")


def actor_failure(exc: BaseException) -> str:
    """One line for an actor that failed: the m2fp error it raised (a model that does not
    load: a corrupt ``.m2fp``, a wrong key, no memory), found in Ray's wrapping of it, else
    the last line of Ray's own message (its traceback text left out)."""
    todo, seen = [exc], set()
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        # Ray's wrapper may be an instance of the cause's class too: its text holds the
        # worker's traceback, so only the plain cause is taken
        if isinstance(error, M2FPError) and type(error).__module__.startswith("m2fp."):
            return f"a parsing actor failed: {error}"
        causes = (getattr(error, "cause", None), error.__cause__, error.__context__)
        todo += [cause for cause in causes if isinstance(cause, BaseException)]
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = lines[-1][:300] if lines else type(exc).__name__
    # an actor's constructor error reaches the driver as text only, its last line
    # "m2fp.errors.IntegrityError: <message>": our own errors say enough without the class
    return f"a parsing actor failed: {_OWN_ERROR_PREFIX.sub('', last)}"


def summary_json(summary: Summary) -> str:
    """The summary as the one JSON line ``m2fp batch`` prints on stdout."""
    return json.dumps(summary.as_dict())
