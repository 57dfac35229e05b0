#!/bin/bash
# The GPU check, for a machine with an NVIDIA GPU, its driver, the CUDA toolkit
# (nvcc) and cuDNN 9 or later. Run from the repository root:
#   scripts/gpu_check.sh [convserve-cuda-bench flags, e.g. --benchmark_filter=b32]
# It
#   1. configures a Release build with the cuDNN backend in build-gpu/
#      (-DCONVSERVE_WITH_CUDA=ON) and builds the CUDA tests, convserve-cuda-bench,
#      convserve-server, convserve-cli and convserve-perf;
#   2. runs the CUDA tests (ctest -R '[Cc]uda'): every conformance case on GPU 0
#      against the reference, determinism, strict float32, the device filter
#      cache, devices and status codes;
#   3. serves: starts convserve-server --cuda-devices 0 and a CPU-only one
#      (--cuda-devices none), sends the same conv2d (float32, float16) to both
#      with convserve-cli, checks the GPU server computed it on cuda:0 and that
#      the results agree, and measures served GFLOP/s with convserve-perf;
#   4. runs convserve-cuda-bench: CudaBackend::Run against bare cuDNN on
#      ResNet-50 layers, batch 1 and 32, f32, tf32, f16 and bf16;
# then prints a summary. Logs and results stay in build-gpu/gpu_check/.
# Exits non-zero if anything fails; exits 0, saying so, on a machine without
# an NVIDIA GPU.
# Time: the build 10 to 30 minutes from scratch (little once build-gpu/ is
# built), the tests about 5 minutes, serving 1, the benchmark 2 to 5.
set -euo pipefail
cd "$(dirname "$0")/.."

gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep '^GPU ' || true)
if [ -z "$gpus" ]; then
  if compgen -G '/proc/driver/nvidia/gpus/*' >/dev/null; then
    gpus="(nvidia-smi lists none, but the driver has $(compgen -G '/proc/driver/nvidia/gpus/*' | wc -l))"
  else
    echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi finds none): nothing to check"
    exit 0
  fi
fi
echo "gpu_check: $gpus"

build="build-gpu"
out=$build/gpu_check
jobs=$(nproc)
# Each test process holds a CUDA context on GPU 0: not too many at once.
test_jobs=$((jobs < 8 ? jobs : 8))
failed=()
summary=()
note() { summary+=("$(printf '%-12s %s' "$1" "$2")"); }

# 1. Build.
scripts/install-deps.sh build
python=/usr/bin/python3  # Debian's, with python3-numpy (as the tests use)
if ! "$python" -c 'import numpy' 2>/dev/null; then
  echo "gpu_check: the served check needs NumPy (python3-numpy; scripts/install-deps.sh installs it)"
  exit 1
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVSERVE_WITH_CUDA=ON
cmake --build "$build" --parallel "$jobs" --target cuda_conformance_tests cuda_devices_tests \
  cuda_status_tests convserve-cuda-bench convserve-server convserve-cli convserve-perf
mkdir -p "$out"
bin=$build/bin

# The GPU as CUDA sees it (nvidia-smi may see one the CUDA runtime cannot use).
probe=$("$bin/convserve-cuda-bench" --benchmark_filter='^$' 2>&1 || true)
if grep -q "nothing to measure" <<<"$probe"; then
  echo "gpu_check: nvidia-smi lists a GPU, but CUDA cannot use it:"
  echo "$probe"
  exit 1
fi
device_line=$(grep -m1 '^GPU ' <<<"$probe" || true)
echo "gpu_check: $device_line"
note "device" "$device_line"

# 2. The CUDA tests.
echo "== CUDA tests (ctest -R '[Cc]uda', $test_jobs at a time)"
ctest_status=0
ctest --test-dir "$build" -R '[Cc]uda' --output-on-failure --parallel "$test_jobs" \
  >"$out/ctest.log" 2>&1 || ctest_status=$?
tail -n 5 "$out/ctest.log"
skipped=$(grep -c '(Skipped)' "$out/ctest.log" || true)
counts=$(grep -m1 'tests passed' "$out/ctest.log" || echo "no ctest summary")
cases=$("$build/tests/cuda_conformance_tests" --gtest_filter='CudaConformanceCases.*' 2>&1 |
  grep -m1 '^CudaBackend computes' || true)
if [ "$ctest_status" -eq 0 ]; then
  note "cuda tests" "ok: $counts; $skipped skipped"
else
  failed+=("cuda tests")
  note "cuda tests" "FAILED: $counts; $skipped skipped (see $out/ctest.log)"
fi
[ -n "$cases" ] && note "" "$cases"

# 3. Served: a GPU server and a CPU-only one answer the same requests.
echo "== served check"
# shellcheck source=tests/start_server.sh
source tests/start_server.sh
work=$(mktemp -d)
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
serve_status=0
gpu_port="" cpu_port=""
if start_server "$out/server_gpu.log" "$bin/convserve-server" --address 127.0.0.1:0 \
  --cuda-devices 0; then
  server_pids+=("$server_pid")
  gpu_port=$port
fi
if start_server "$out/server_cpu.log" "$bin/convserve-server" --address 127.0.0.1:0 \
  --cuda-devices none; then
  server_pids+=("$server_pid")
  cpu_port=$port
fi
if [ -z "$gpu_port" ] || [ -z "$cpu_port" ]; then
  serve_status=1
  note "served" "FAILED: a server did not start (see $out/server_*.log)"
else
  "$python" - "$work" <<'PY'
import sys
import numpy as np
work = sys.argv[1]
rng = np.random.default_rng(11)
x = rng.uniform(-1, 1, (2, 28, 28, 64))
w = rng.uniform(-1, 1, (3, 3, 64, 64)) / 24
for name, dtype in (("f32", np.float32), ("f16", np.float16)):
    np.save(f"{work}/x_{name}.npy", x.astype(dtype))
    np.save(f"{work}/w_{name}.npy", w.astype(dtype))
PY
  served=()
  for dt in f32 f16; do
    for side in gpu cpu; do
      port_var=${side}_port
      if ! "$bin/convserve-cli" --address "127.0.0.1:${!port_var}" --timeout 60 conv2d \
        --input "$work/x_$dt.npy" --filter "$work/w_$dt.npy" --padding SAME \
        --output "$work/y_${dt}_$side.npy" 2>"$out/cli_${dt}_$side.txt"; then
        serve_status=1
        served+=("$dt: the $side server failed: $(tail -n 1 "$out/cli_${dt}_$side.txt")")
        continue 2
      fi
    done
    reply=$(cat "$out/cli_${dt}_gpu.txt")
    # "compute N us on BACKEND (DEVICE)"; older clients print no device.
    if ! grep -q ' on cuda' <<<"$reply"; then
      serve_status=1
      served+=("$dt: not computed by the cuda backend: $reply")
      continue
    fi
    where="on cuda"
    if grep -q ' on [a-z0-9_]* (' <<<"$reply"; then
      if grep -q '(cuda:0)' <<<"$reply"; then
        where="on cuda:0"
      else
        serve_status=1
        served+=("$dt: computed on the wrong device: $reply")
        continue
      fi
    fi
    limit=$([ "$dt" = f32 ] && echo 1e-4 || echo 1e-2)
    if diff=$("$python" - "$work/y_${dt}_gpu.npy" "$work/y_${dt}_cpu.npy" "$limit" <<'PY'
import sys
import numpy as np
gpu, cpu = (np.load(p).astype(np.float64) for p in sys.argv[1:3])
assert gpu.shape == cpu.shape, (gpu.shape, cpu.shape)
rel = float(np.max(np.abs(gpu - cpu)) / max(np.max(np.abs(cpu)), 1e-30))
print(f"{rel:.2e}")
sys.exit(0 if np.all(np.isfinite(gpu)) and rel <= float(sys.argv[3]) else 1)
PY
    ); then
      served+=("$dt $where, matches the CPU server (max diff / max |y| $diff)")
    else
      serve_status=1
      served+=("$dt: differs from the CPU server: max diff / max |y| $diff > $limit")
    fi
  done
  if [ "$serve_status" -eq 0 ]; then
    note "served" "ok: conv2d 2x28x28x64 (*) 3x3x64x64: $(IFS=';'; echo "${served[*]}")"
  else
    note "served" "FAILED: $(IFS=';'; echo "${served[*]}")"
  fi

  # Served GFLOP/s of one ResNet-50 layer, batch 32, registered filter.
  for dtype in float32 float16; do
    if "$bin/convserve-perf" --address "127.0.0.1:$gpu_port" --mode unary --op conv2d \
      --input-shape 32,56,56,64 --filter-shape 3,3,64,64 --padding SAME --dtype "$dtype" \
      --registered-filter --concurrency 1,2,4 --warmup-requests 16 --duration 5 \
      --requests 100000 --csv "$out/perf_$dtype.csv" >"$out/perf_$dtype.txt" 2>&1; then
      best=$("$python" - "$out/perf_$dtype.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["mode"] == "unary"]
best = max(rows, key=lambda r: float(r["gflops"]))
print(f'{float(best["gflops"]):.0f} GFLOP/s at {best["load"]} (p50 {float(best["p50_us"]):.0f} us)')
PY
      )
      note "served perf" "$dtype resnet50_3x3_56x56x64_64 b32: $best"
    else
      serve_status=1
      note "served perf" "FAILED: $dtype (see $out/perf_$dtype.txt)"
    fi
  done
fi
[ "$serve_status" -eq 0 ] || failed+=("served")
cleanup
server_pids=()
trap - EXIT

# 4. The benchmark.
echo "== convserve-cuda-bench"
bench_status=0
"$bin/convserve-cuda-bench" --benchmark_min_time=0.5 --benchmark_counters_tabular=true \
  --benchmark_out="$out/bench.json" --benchmark_out_format=json "$@" | tee "$out/bench.txt" ||
  bench_status=$?
if [ "$bench_status" -eq 0 ]; then
  table=$("$python" - "$out/bench.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
bad = 0
print(f'{"":12} {"benchmark":44} {"ours GFLOP/s":>12} {"bare GFLOP/s":>12} {"ours/bare":>9}')
for r in rows:
    name = r["name"].removesuffix("/real_time")
    if r.get("error_occurred"):
        message = r.get("error_message", "")
        bad += "does not compute" not in message
        print(f'{"":12} {name:44} {message}')
        continue
    print(f'{"":12} {name:44} {r["ours_GFLOPs"]:12.0f} {r["bare_GFLOPs"]:12.0f} '
          f'{r["ours_vs_bare"]:9.2f}')
sys.exit(1 if bad else 0)
PY
  ) || bench_status=$?
fi
if [ "$bench_status" -eq 0 ]; then
  note "bench" "ok ($out/bench.json)"
else
  failed+=("bench")
  note "bench" "FAILED (see $out/bench.txt)"
fi

echo
echo "== gpu_check summary"
printf '%s\n' "${summary[@]}"
[ -n "${table:-}" ] && echo "$table"
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu_check: FAILED: ${failed[*]}"
  exit 1
fi
echo "gpu_check: all checks passed"
