"""Eager against OpenVINO fp32 while another process keeps one CPU busy (issue 22, ask 5).

On a shared node a replica rarely has its CPUs to itself. OpenVINO's thread pool reacted
worse than PyTorch's to a busy neighbour (issue 22: 0.7x of eager under load ~3 on 2 vCPUs), so
this measures, in one process and one run, the forward of the seeded R101 at 640x960:
eager, and OpenVINO with the threads m2fp derives (``m2fp.compute.threads.plan_threads``) and
pinning as it decides, pinning forced on, and one thread fewer; first on the machine as it is,
then with a competing busy loop bound to one CPU. Rounds are round-robin (eager, OpenVINO...,
eager...), medians after one warm-up each, plus the median per-round eager/engine ratio.

Usage: .venv/bin/python benchmarks/bench_contention.py [--rounds 3]
Prints the 1-minute load before and after: this is a shared machine's reading, not a benchmark
of a quiet one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from bench_pipeline import SEED, network_input, synthetic_photo

from m2fp import HumanParser
from m2fp.build import build_model, preset
from m2fp.compute.threads import plan_threads
from m2fp.engines.openvino_convert import convert_fp32
from m2fp.engines.openvino_engine import OpenVINOEngine

# a busy loop bound to the last CPU: one core's worth of competition, nothing else
BUSY = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(engines: dict, batch: torch.Tensor, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in engines}
    with torch.inference_mode():
        for fn in engines.values():
            fn(batch)
        for _ in range(rounds):
            for name, fn in engines.items():
                samples[name].append(timed(lambda fn=fn: fn(batch)))
    return samples


def report(title: str, samples: dict[str, list[float]]) -> None:
    print(f"\n{title}\n| engine | forward (median) | min | vs eager | per-round ratio |")
    print("| --- | --- | --- | --- | --- |")
    eager = samples["eager"]
    for name, times in samples.items():
        ratio = statistics.median(e / t for e, t in zip(eager, times, strict=True))
        median = statistics.median(times)
        print(
            f"| {name} | {median:.2f} s | {min(times):.2f} s "
            f"| {statistics.median(eager) / median:.2f}x | {ratio:.2f}x |"
        )


def main() -> None:
    args = parse_args()
    plan = plan_threads()
    print(f"thread plan here: {plan}")
    torch.manual_seed(SEED)
    model = build_model(preset("m2fp_r101_cihp")).eval()
    batch = network_input(model, synthetic_photo(960, 640, SEED))
    package = convert_fp32(model)  # before the parser makes the weights channels-last
    parser = HumanParser(model=model, class_names=tuple(preset("m2fp_r101_cihp")["classes"]))
    fewer = max(1, plan.threads - 1)
    engines = {
        "eager": parser._forward,
        f"openvino fp32, {plan.threads} threads, pinning {plan.pinning} (derived)": OpenVINOEngine(
            package=package, num_threads=plan.threads, pinning=plan.pinning
        ),
        f"openvino fp32, {plan.threads} threads, pinning on": OpenVINOEngine(
            package=package, num_threads=plan.threads, pinning=True
        ),
    }
    if fewer != plan.threads:
        engines[f"openvino fp32, {fewer} thread(s), pinning off"] = OpenVINOEngine(
            package=package, num_threads=fewer, pinning=False
        )
    print(f"input {tuple(batch.shape)}; load before: {os.getloadavg()}")
    report("as the machine is", measure(engines, batch, args.rounds))
    busy_cpu = max(os.sched_getaffinity(0))
    busy = subprocess.Popen([sys.executable, "-c", BUSY, str(busy_cpu)])
    try:
        print(f"\nbusy loop on CPU {busy_cpu} (pid {busy.pid}); load: {os.getloadavg()}")
        report("with one busy process", measure(engines, batch, args.rounds))
    finally:
        busy.kill()
        busy.wait()
    print(f"\nload after: {os.getloadavg()}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after a warm-up")
    return parser.parse_args()


if __name__ == "__main__":
    main()
