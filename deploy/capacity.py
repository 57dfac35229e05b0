#!/usr/bin/python3
"""Capacity planning: what one replica on this machine serves, per core.

For each reference shape, starts convserve-server on loopback with all the
cores this process may use, once as 1 worker x all threads and once as one
worker per core, drives it closed-loop with convserve-perf, and prints a
Markdown table of the better of the two: requests/s and GFLOP/s, the same
per core, p99 latency, and the cores (and replicas of this size) needed for
1000 requests/s at 70% utilisation.

Usage: capacity.py SERVER_BIN PERF_BIN [--seconds S]
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# name, convserve-perf arguments
SHAPES = [
    ("tiny conv2d 1x8x8x4, 3x3x4x4", ["--op", "conv2d", "--input-shape", "1,8,8,4",
                                      "--filter-shape", "3,3,4,4"]),
    ("MobileNet depthwise 1x112x112x32, 3x3", ["--op", "depthwise_conv2d",
                                               "--input-shape", "1,112,112,32",
                                               "--filter-shape", "3,3,32,1"]),
    ("ResNet 3x3 1x56x56x64", ["--op", "conv2d", "--input-shape", "1,56,56,64",
                               "--filter-shape", "3,3,64,64"]),
    ("ResNet 3x3 1x14x14x256", ["--op", "conv2d", "--input-shape", "1,14,14,256",
                                "--filter-shape", "3,3,256,256"]),
    ("ResNet 3x3 1x14x14x256 bfloat16", ["--op", "conv2d", "--input-shape", "1,14,14,256",
                                         "--filter-shape", "3,3,256,256",
                                         "--dtype", "bfloat16"]),
]
CONCURRENCY = 8  # enough callers to keep every worker busy
UTILISATION = 0.7
TARGET_RPS = 1000


def cores_available():
    return len(os.sched_getaffinity(0))


def start_server(server_bin, workers, threads, log_path):
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [server_bin, "--address", "127.0.0.1:0", "--workers", str(workers),
             "--threads-per-worker", str(threads), "--max-queue", "64"],
            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"\(port (\d+)\)", open(log_path).read())
        if match:
            return process, f"127.0.0.1:{match.group(1)}"
        if process.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit(f"capacity: convserve-server did not start:\n{open(log_path).read()}")


def run_perf(perf_bin, address, shape_args, seconds, workdir):
    result = os.path.join(workdir, "perf.json")
    subprocess.run(
        [perf_bin, "--address", address, "--mode", "unary", "--padding", "SAME",
         "--registered-filter", *shape_args, "--concurrency", str(CONCURRENCY),
         "--requests", "100000000", "--duration", str(seconds), "--warmup-requests", "40",
         "--json", result],
        check=True, stdout=subprocess.DEVNULL)
    return json.load(open(result))["steps"][0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server_bin")
    parser.add_argument("perf_bin")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per measurement")
    args = parser.parse_args()
    cores = cores_available()
    layouts = sorted({(1, cores), (cores, 1)})
    workdir = tempfile.mkdtemp(prefix="convserve-capacity-")

    best = {}
    for workers, threads in layouts:
        server, address = start_server(args.server_bin, workers, threads,
                                       os.path.join(workdir, "server.log"))
        try:
            for name, shape_args in SHAPES:
                step = run_perf(args.perf_bin, address, shape_args, args.seconds, workdir)
                if step["errors"]:
                    sys.exit(f"capacity: {name}: errors {step['errors']}")
                if name not in best or step["req_per_s"] > best[name][0]["req_per_s"]:
                    best[name] = (step, f"{workers}x{threads}")
        finally:
            server.terminate()
            server.wait()

    print(f"One replica with {cores} cores (workers x threads as shown), closed loop with "
          f"{CONCURRENCY} callers over loopback gRPC, {args.seconds:g} s per row.\n")
    print("| shape | workers x threads | req/s | GFLOP/s | req/s per core | GFLOP/s per core "
          f"| p99 ms | cores for {TARGET_RPS} req/s | {cores}-core replicas for "
          f"{TARGET_RPS} req/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, _ in SHAPES:
        step, layout = best[name]
        rps, gflops = step["req_per_s"], step["gflops"]
        cores_needed = TARGET_RPS / (rps / cores * UTILISATION)
        print(f"| {name} | {layout} | {rps:.0f} | {gflops:.1f} | {rps / cores:.0f} | "
              f"{gflops / cores:.1f} | {step['p99_us'] / 1000:.1f} | {cores_needed:.1f} | "
              f"{math.ceil(cores_needed / cores)} |")
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nCores and replicas keep {100 - 100 * UTILISATION:.0f}% headroom "
          f"(utilisation {UTILISATION:g}); scale linearly for other rates.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
