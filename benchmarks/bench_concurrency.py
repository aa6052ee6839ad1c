"""Throughput of one shared HumanParser under concurrent clients, per thread setting.

Each configuration is ``workers x intra-op threads``: ``workers`` parses may run at once (a
semaphore, as the server's inference limiter), each using ``torch.set_num_threads`` intra-op
threads. ``clients`` threads submit ``images`` 960x640 photos each. Prints images/s, median
latency and CPU use (process CPU seconds / wall seconds / cores: 100% = every core busy).

Usage: .venv/bin/python benchmarks/bench_concurrency.py [--clients 4] [--images 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from bench_pipeline import SEED, realistic_model, synthetic_photo

from m2fp import HumanParser
from m2fp.build import preset


def run(parser: HumanParser, photo: bytes, clients: int, images: int, workers: int) -> dict:
    limiter = threading.BoundedSemaphore(workers)
    latencies: list[float] = []

    def client() -> None:
        for _ in range(images):
            start = time.perf_counter()
            with limiter:
                result = parser(photo)
                result.visualize()
            latencies.append(time.perf_counter() - start)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    return {
        "throughput": clients * images / wall,
        "latency": statistics.median(latencies),
        "cpu": cpu / wall / os.cpu_count(),
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--clients", type=int, default=4)
    args.add_argument("--images", type=int, default=3)
    args.add_argument("--configs", nargs="+", default=["1x2", "2x1", "4x2", "1x1"])
    options = args.parse_args()
    photo = synthetic_photo(960, 640, SEED)
    parser = HumanParser(
        model=realistic_model(photo),
        class_names=tuple(preset("m2fp_r101_cihp")["classes"]),
        ins_score_thr=0.3,
    )
    parser(photo)  # warm-up
    print(f"{options.clients} clients x {options.images} images, {os.cpu_count()} cores")
    print("| workers x threads | images/s | median latency | CPU use | load |")
    print("| --- | --- | --- | --- | --- |")
    for config in options.configs:
        workers, threads = (int(v) for v in config.split("x"))
        torch.set_num_threads(threads)
        stats = run(parser, photo, options.clients, options.images, workers)
        print(
            f"| {config} | {stats['throughput']:.3f} | {stats['latency']:.1f} s "
            f"| {stats['cpu']:.0%} | {os.getloadavg()[0]:.2f} |"
        )


if __name__ == "__main__":
    main()
