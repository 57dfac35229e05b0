#!/bin/bash
# End to end: start convserve-server, run ops through convserve-cli with .npy
# files, and compare with results computed independently in NumPy.
# Usage: cli_end_to_end_test.sh SERVER_BIN CLI_BIN
set -euo pipefail
server_bin=$1
cli_bin=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

source "$here/start_server.sh"
start_server server.log "$server_bin" --address 127.0.0.1:0
cli() { "$cli_bin" --address "127.0.0.1:$port" --timeout 60 "$@"; }

python=/usr/bin/python3
$python - <<'PY'
import numpy as np
rng = np.random.default_rng(7)
np.save("x.npy", rng.standard_normal((2, 7, 6, 3)).astype(np.float32))
np.save("w.npy", rng.standard_normal((3, 3, 3, 4)).astype(np.float32))
np.save("dw.npy", rng.standard_normal((3, 3, 3, 2)).astype(np.float32))
np.save("pw.npy", rng.standard_normal((1, 1, 6, 5)).astype(np.float32))
np.save("dy.npy", rng.standard_normal((2, 4, 3, 4)).astype(np.float32))
np.save("w1.npy", rng.standard_normal((3, 3, 4)).astype(np.float32))
np.save("dy1.npy", rng.standard_normal((2, 4, 4)).astype(np.float32))
np.save("xi.npy", rng.integers(-9, 9, (1, 4, 4, 2)).astype(np.int32))
np.save("wi.npy", rng.integers(-9, 9, (2, 2, 2, 3)).astype(np.int32))
PY

cli conv2d --input x.npy --filter w.npy --strides 2 --padding SAME --output conv2d.npy
cli depthwise_conv2d --input x.npy --filter dw.npy --padding VALID --output depthwise.npy
cli separable_conv2d --input x.npy --filter dw.npy --pointwise-filter pw.npy \
    --padding SAME --dilations 2 --output separable.npy
cli conv2d_transpose --input dy.npy --filter w.npy --output-shape 2,7,6,3 --strides 2 \
    --padding SAME --output transpose.npy
# TF 2's forms: output_shape (H, W) with explicit pads; conv1d_transpose.
cli conv2d_transpose --input dy.npy --filter w.npy --output-shape 7,6 --strides 2 \
    --padding EXPLICIT --explicit-paddings 0,0,2,0,1,1,0,0 --output transpose_explicit.npy
cli conv1d_transpose --input dy1.npy --filter w1.npy --output-shape 2,8,3 --strides 2 \
    --padding SAME --output transpose1d.npy
cli conv2d --input xi.npy --filter wi.npy --padding VALID --output int32.npy
cli info >info.txt
grep -q 'ops: "conv_transpose"' info.txt
grep -q 'ops: "conv1d_transpose"' info.txt

# Refused requests: a readable error and a non-zero exit, the server unharmed.
if cli conv2d --input x.npy --filter w.npy --strides 2,1,1,1 --padding SAME \
    --output bad.npy 2>err.txt; then
  echo "expected a failure"; exit 1
fi
grep -q "INVALID_ARGUMENT: Current implementation does not yet support strides" err.txt

$python - <<'PY'
import numpy as np

def conv2d(x, w, stride, pads):
    """Direct NHWC cross-correlation with explicit (top, bottom, left, right) pads."""
    x = np.pad(x.astype(np.float64), ((0, 0), (pads[0], pads[1]), (pads[2], pads[3]), (0, 0)))
    kh, kw, _, o = w.shape
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y

def depthwise(x, w, dilation, pads):
    kh, kw, c, m = w.shape
    big = np.zeros(((kh - 1) * dilation + 1, (kw - 1) * dilation + 1, c, m))
    big[::dilation, ::dilation] = w
    return np.concatenate(
        [conv2d(x[..., k:k + 1], big[:, :, k:k + 1, :], 1, pads) for k in range(c)], axis=-1)

def close(name, expected):
    got = np.load(name)
    assert got.shape == expected.shape, (name, got.shape, expected.shape)
    err = np.max(np.abs(got - expected) / (1 + np.abs(expected)))
    assert err < 1e-5, (name, err)
    print(f"{name}: shape {got.shape} matches NumPy (max rel err {err:.1e})")

x, w = np.load("x.npy"), np.load("w.npy")
dw, pw, dy = np.load("dw.npy"), np.load("pw.npy"), np.load("dy.npy")
# SAME, stride 2 on 7x6 with k=3: out 4x3, pad_total 2 and 1 -> (1, 1), (0, 1).
close("conv2d.npy", conv2d(x, w, 2, (1, 1, 0, 1)))
close("depthwise.npy", depthwise(x, dw, 1, (0, 0, 0, 0)))
# Dilation 2: effective filter 5, SAME pads 2 on every side.
close("separable.npy", conv2d(depthwise(x, dw, 2, (2, 2, 2, 2)), pw, 1, (0, 0, 0, 0)))
# conv2d_transpose is the adjoint of conv2d: <conv2d(v), dy> == <v, transpose(dy)>.
t = np.load("transpose.npy").astype(np.float64)
assert t.shape == (2, 7, 6, 3), t.shape
basis = np.zeros(x.shape)
for idx in [(0, 0, 0, 0), (1, 6, 5, 2), (0, 3, 2, 1), (1, 0, 5, 0)]:
    basis[:] = 0
    basis[idx] = 1
    expected = np.sum(conv2d(basis, w.astype(np.float64), 2, (1, 1, 0, 1)) * dy)
    assert abs(t[idx] - expected) < 1e-4 * (1 + abs(expected)), (idx, t[idx], expected)
print("transpose.npy: adjoint of conv2d")
# The same with explicit pads (2, 0) and (1, 1) and a spatial-only output_shape.
t = np.load("transpose_explicit.npy").astype(np.float64)
assert t.shape == (2, 7, 6, 3), t.shape
for idx in [(0, 0, 0, 0), (1, 6, 5, 2), (0, 3, 2, 1), (1, 5, 0, 0)]:
    basis[:] = 0
    basis[idx] = 1
    expected = np.sum(conv2d(basis, w.astype(np.float64), 2, (2, 0, 1, 1)) * dy)
    assert abs(t[idx] - expected) < 1e-4 * (1 + abs(expected)), (idx, t[idx], expected)
print("transpose_explicit.npy: adjoint of conv2d with explicit pads")
# conv1d_transpose: the adjoint of conv1d (conv2d on a height of 1); SAME
# width 8, k 3, stride 2: out 4, pads (0, 1).
t = np.load("transpose1d.npy").astype(np.float64)
assert t.shape == (2, 8, 3), t.shape
w1, dy1 = np.load("w1.npy").astype(np.float64), np.load("dy1.npy")
basis = np.zeros((2, 1, 8, 3))
for idx in [(0, 0, 0), (1, 7, 2), (0, 3, 1), (1, 6, 0)]:
    basis[:] = 0
    basis[idx[0], 0, idx[1], idx[2]] = 1
    expected = np.sum(conv2d(basis, w1[np.newaxis], 2, (0, 0, 0, 1))[:, 0] * dy1)
    assert abs(t[idx] - expected) < 1e-4 * (1 + abs(expected)), (idx, t[idx], expected)
print("transpose1d.npy: adjoint of conv1d")
xi, wi = np.load("xi.npy"), np.load("wi.npy")
got = np.load("int32.npy")
assert got.dtype == np.int32 and np.array_equal(got, conv2d(xi, wi, 1, (0, 0, 0, 0)).astype(np.int32))
print("int32.npy: exact")
PY
echo "cli_end_to_end: all checks passed"
