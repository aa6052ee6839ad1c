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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2fp.batch.actor import ActorConfig, ParseActor
from m2fp.batch.errors import BatchError
from m2fp.batch.outputs import check_form, done_stems, remove_stale_temporaries, write_failures
from m2fp.batch.sources import list_sources
from m2fp.compute.threads import plan_threads

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
        batch_size: inputs per actor call.
    """

    source: str
    actor: ActorConfig
    actors: int = 1
    gpus_per_actor: float | None = None
    threads: int | None = None
    skip_existing: bool = False
    ray_address: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


@dataclass
class Summary:
    """What a job did: inputs found, parsed, skipped (complete already) and failed, its wall
    time, and each actor's peak memory (``host:pid`` -> bytes)."""

    images: int = 0
    parsed: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    actor_peak_rss: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "parsed": self.parsed,
            "skipped": self.skipped,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.parsed / self.seconds, 3) if self.seconds else 0.0,
            "actor_peak_rss_mib": {
                actor: round(rss / 2**20, 1) for actor, rss in sorted(self.actor_peak_rss.items())
            },
        }

    def line(self) -> str:
        """The closing summary line."""
        facts = self.as_dict()
        memory = ", ".join(f"{mib:.0f}" for mib in facts["actor_peak_rss_mib"].values()) or "-"
        return (
            f"{self.images} images: {self.parsed} parsed, {self.skipped} skipped, "
            f"{self.failed} failed in {facts['seconds']:.1f} s "
            f"({facts['images_per_second']:.2f} images/s); actor peak memory MiB: {memory}"
        )


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
        ray.init(address=job.ray_address, logging_level="WARNING", log_to_driver=False, **local)
    try:
        threads, gpus = _pool_size(job, ray.cluster_resources())
        if todo:
            config = dataclasses.replace(
                job.actor, options=dataclasses.replace(job.actor.options, threads=threads)
            )
            statuses = ray.data.from_items([dataclasses.asdict(s) for s in todo]).map_batches(
                ParseActor,
                fn_constructor_kwargs={"config": config},
                concurrency=job.actors,
                num_cpus=threads,
                num_gpus=gpus,
                batch_size=job.batch_size,
                batch_format="numpy",
            )
            for row in statuses.iter_rows():
                actor, rss = str(row["actor"]), int(row["peak_rss_bytes"])
                summary.actor_peak_rss[actor] = max(rss, summary.actor_peak_rss.get(actor, 0))
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


def summary_json(summary: Summary) -> str:
    """The summary as the one JSON line ``m2fp batch`` prints on stdout."""
    return json.dumps(summary.as_dict())
