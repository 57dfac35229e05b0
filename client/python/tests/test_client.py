"""convserve.Client against the real server, checked with an independent NumPy reference.

The reference below is written from the definitions (TF_SEMANTICS.md): direct
loops over the filter taps with matrix products, in float64 (int64 for int32,
wrapped to 32 bits at the end). Transposed convolutions are checked as the
adjoint (scatter) of the forward convolution.
"""

import math

import grpc
import numpy as np
import pytest

import convserve

RNG = np.random.default_rng(20240601)


# ---------------------------------------------------------------------------
# NumPy reference (channels last; filters spatial + [in/groups, out]).


def _tup(value, n):
    if value is None:
        return (1,) * n
    if np.ndim(value) == 0:
        return (int(value),) * n
    value = [int(v) for v in value]
    if len(value) == 1:
        return tuple(value) * n
    if len(value) == n + 2:
        return tuple(value[1:-1])
    return tuple(value)


def window_pads(sizes, kernel, strides, dilations, padding):
    """(before, after) per spatial dim for "SAME"/"VALID" (TF: odd pixel at the end)."""
    pads = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        if padding == "VALID":
            pads.append((0, 0))
            continue
        eff = (k - 1) * d + 1
        out = -(-size // s)
        total = max(0, (out - 1) * s + eff - size)
        pads.append((total // 2, total - total // 2))
    return pads


def ref_conv(x, w, strides=1, dilations=1, padding="VALID"):
    """N-D grouped cross-correlation, channels last. padding: "SAME", "VALID" or pairs."""
    n = w.ndim - 2
    strides, dilations = _tup(strides, n), _tup(dilations, n)
    integer = x.dtype.kind in "iu"
    acc = np.int64 if integer else np.float64
    if isinstance(padding, str):
        pads = window_pads(x.shape[1:-1], w.shape[:n], strides, dilations, padding)
    else:
        pads = [tuple(p) for p in padding]
    xp = np.pad(x.astype(acc), [(0, 0)] + pads + [(0, 0)])
    wf = w.astype(acc)
    cin, cout = w.shape[-2], w.shape[-1]
    groups = x.shape[-1] // cin
    og = cout // groups
    out_sizes = [(xp.shape[1 + i] - ((w.shape[i] - 1) * dilations[i] + 1)) // strides[i] + 1
                 for i in range(n)]
    y = np.zeros((x.shape[0], *out_sizes, cout), dtype=acc)
    if min(out_sizes) <= 0:
        return y
    for tap in np.ndindex(*w.shape[:n]):
        window = tuple(slice(tap[i] * dilations[i],
                             tap[i] * dilations[i] + (out_sizes[i] - 1) * strides[i] + 1,
                             strides[i]) for i in range(n))
        patch = xp[(slice(None),) + window]
        for g in range(groups):
            y[..., g * og:(g + 1) * og] += (patch[..., g * cin:(g + 1) * cin]
                                           @ wf[tap][:, g * og:(g + 1) * og])
    return y


def ref_conv_transpose(dy, w, output_shape, strides=1, dilations=1, padding="SAME"):
    """Adjoint of ref_conv (ungrouped) for an input of `output_shape`, by scatter.
    padding: "SAME", "VALID" or (before, after) pairs per spatial dimension."""
    n = w.ndim - 2
    strides, dilations = _tup(strides, n), _tup(dilations, n)
    if isinstance(padding, str):
        pads = window_pads(output_shape[1:-1], w.shape[:n], strides, dilations, padding)
    else:
        pads = [tuple(p) for p in padding]
    padded = [output_shape[1 + i] + pads[i][0] + pads[i][1] for i in range(n)]
    dx = np.zeros((output_shape[0], *padded, output_shape[-1]))
    out_sizes = dy.shape[1:-1]
    wf = w.astype(np.float64)
    for tap in np.ndindex(*w.shape[:n]):
        window = tuple(slice(tap[i] * dilations[i],
                             tap[i] * dilations[i] + (out_sizes[i] - 1) * strides[i] + 1,
                             strides[i]) for i in range(n))
        # A window may run past the padded input (VALID with a larger output_shape).
        dx_window = dx[(slice(None),) + window]
        contribution = dy.astype(np.float64) @ wf[tap].T
        fit = tuple(slice(0, dx_window.shape[1 + i]) for i in range(n))
        dx_window += contribution[(slice(None),) + fit]
    crop = tuple(slice(pads[i][0], pads[i][0] + output_shape[1 + i]) for i in range(n))
    return dx[(slice(None),) + crop]


def ref_depthwise(x, w, strides=1, dilations=1, padding="VALID"):
    kh, kw, c, m = w.shape
    return ref_conv(x, w.reshape(kh, kw, 1, c * m), strides, dilations, padding)


def to_first(a):
    return np.moveaxis(a, -1, 1)


def to_last(a):
    return np.moveaxis(a, 1, -1)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def assert_close(got, expected, rtol=1e-5):
    assert got.shape == expected.shape, (got.shape, expected.shape)
    err = np.abs(got.astype(np.float64) - expected)
    assert np.all(err <= rtol * (1 + np.abs(expected))), float(err.max())


# ---------------------------------------------------------------------------
# Forward ops.


@pytest.mark.parametrize("padding,strides,dilations", [
    ("SAME", 1, None),
    ("VALID", 1, None),
    ("SAME", 2, None),
    ("VALID", [2, 3], None),
    ("SAME", [1, 2, 2, 1], None),
    ("SAME", 1, 2),
    ("VALID", [1, 1], [2, 1]),
])
def test_conv2d(client, padding, strides, dilations):
    x, w = randn(2, 9, 8, 3), randn(3, 2, 3, 4)
    y = client.conv2d(x, w, strides, padding, dilations=dilations)
    assert y.dtype == np.float32
    assert_close(y, ref_conv(x, w, strides, dilations, padding))


def test_conv2d_same_odd_pixel_goes_to_the_end(client):
    # README's example: 5x5 ramp, 3x3 ones, stride 2, SAME.
    x = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    w = np.ones((3, 3, 1, 1), dtype=np.float32)
    y = client.conv2d(x, w, strides=2, padding="SAME")
    np.testing.assert_array_equal(y[0, :, :, 0], [[16, 33, 28], [69, 117, 87], [76, 123, 88]])


def test_conv2d_nchw(client):
    x, w = randn(2, 3, 7, 6), randn(3, 3, 3, 5)
    y = client.conv2d(x, w, strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW")
    assert_close(y, to_first(ref_conv(to_last(x), w, 2, 1, "SAME")))


def test_conv2d_explicit_padding(client):
    x, w = randn(1, 6, 5, 2), randn(3, 3, 2, 3)
    padding = [[0, 0], [1, 2], [0, 3], [0, 0]]
    y = client.conv2d(x, w, 1, padding)
    assert y.shape == (1, 7, 6, 3)
    assert_close(y, ref_conv(x, w, 1, 1, [(1, 2), (0, 3)]))


def test_conv2d_explicit_padding_nchw(client):
    x, w = randn(1, 2, 6, 5), randn(2, 2, 2, 3)
    y = client.conv2d(x, w, 2, [[0, 0], [0, 0], [2, 1], [1, 1]], data_format="NCHW")
    assert_close(y, to_first(ref_conv(to_last(x), w, 2, 1, [(2, 1), (1, 1)])))


def test_conv2d_grouped(client):
    x, w = randn(2, 5, 5, 6), randn(3, 3, 2, 9)  # 3 groups
    assert_close(client.conv2d(x, w, 1, "SAME"), ref_conv(x, w, 1, 1, "SAME"))


def test_conv2d_valid_filter_larger_than_input_gives_empty_output(client):
    y = client.conv2d(randn(1, 3, 3, 1), randn(4, 4, 1, 2), 1, "VALID")
    assert y.shape == (1, 0, 0, 2)


def test_conv1d(client):
    x, w = randn(3, 11, 4), randn(3, 4, 5)
    y = client.conv1d(x, w, 2, "SAME")
    assert_close(y, ref_conv(x, w, 2, 1, "SAME"))
    y = client.conv1d(x, w, stride=1, padding="VALID", dilations=2)
    assert_close(y, ref_conv(x, w, 1, 2, "VALID"))


def test_conv1d_ncw(client):
    x, w = randn(2, 4, 9), randn(2, 4, 3)
    y = client.conv1d(x, w, [1, 1, 2], "VALID", data_format="NCW")
    assert_close(y, to_first(ref_conv(to_last(x), w, 2, 1, "VALID")))


def test_conv3d(client):
    x, w = randn(2, 5, 6, 4, 3), randn(2, 3, 2, 3, 4)
    assert_close(client.conv3d(x, w, [1, 2, 1, 2, 1], "SAME"), ref_conv(x, w, [1, 2, 1, 2, 1], 1, "SAME"))
    assert_close(client.conv3d(x, w, 1, "VALID", dilations=[1, 2, 1, 1, 1]),
                 ref_conv(x, w, 1, [2, 1, 1], "VALID"))


def test_conv3d_ncdhw(client):
    x, w = randn(1, 2, 4, 5, 3), randn(2, 2, 2, 2, 3)
    y = client.conv3d(x, w, [1, 1, 1, 1, 1], "SAME", data_format="NCDHW")
    assert_close(y, to_first(ref_conv(to_last(x), w, 1, 1, "SAME")))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_convolution(client, rank):
    spatial = (7, 6, 5)[:rank]
    x, w = randn(2, *spatial, 3), randn(*(3, 2, 2)[:rank], 3, 4)
    assert_close(client.convolution(x, w), ref_conv(x, w, 1, 1, "VALID"))
    assert_close(client.convolution(x, w, strides=2, padding="SAME"), ref_conv(x, w, 2, 1, "SAME"))
    assert_close(client.convolution(x, w, padding="SAME", dilations=2),
                 ref_conv(x, w, 1, 2, "SAME"))


def test_depthwise_conv2d(client):
    x, w = randn(2, 7, 6, 3), randn(3, 3, 3, 2)
    assert_close(client.depthwise_conv2d(x, w, [1, 1, 1, 1], "VALID"), ref_depthwise(x, w))
    assert_close(client.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME"),
                 ref_depthwise(x, w, 2, 1, "SAME"))
    assert_close(client.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME", dilations=[2, 2]),
                 ref_depthwise(x, w, 1, 2, "SAME"))


def test_depthwise_conv2d_nchw(client):
    x, w = randn(1, 3, 6, 6), randn(2, 2, 3, 2)
    y = client.depthwise_conv2d(x, w, [1, 1, 2, 2], "SAME", data_format="NCHW")
    assert_close(y, to_first(ref_depthwise(to_last(x), w, 2, 1, "SAME")))


def test_separable_conv2d(client):
    x, dw, pw = randn(2, 7, 6, 3), randn(3, 3, 3, 2), randn(1, 1, 6, 5)
    y = client.separable_conv2d(x, dw, pw, [1, 1, 1, 1], "SAME", dilations=2)
    assert_close(y, ref_conv(ref_depthwise(x, dw, 1, 2, "SAME"), pw), rtol=1e-4)
    y = client.separable_conv2d(x, dw, pw, [1, 2, 2, 1], "VALID")
    assert_close(y, ref_conv(ref_depthwise(x, dw, 2, 1, "VALID"), pw), rtol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_atrous_conv2d(client, padding):
    x, w = randn(2, 9, 8, 2), randn(3, 3, 2, 3)
    assert_close(client.atrous_conv2d(x, w, 2, padding), ref_conv(x, w, 1, 2, padding))
    assert_close(client.atrous_conv2d(x, w, rate=1, padding=padding), ref_conv(x, w, 1, 1, padding))


# ---------------------------------------------------------------------------
# Transposed ops: the adjoint of the forward op.


@pytest.mark.parametrize("output_shape,strides,padding", [
    ((2, 7, 6, 3), 2, "SAME"),
    ((2, 8, 6, 3), 2, "SAME"),
    ((2, 9, 7, 3), 2, "VALID"),
    ((2, 10, 8, 3), 2, "VALID"),  # one extra row and column the filter never reaches
    ((2, 5, 4, 3), 1, "SAME"),
])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(client, output_shape, strides, padding):
    w = randn(3, 3, 3, 4)
    forward = ref_conv(np.zeros(output_shape, np.float32), w, strides, 1, padding)
    dy = randn(*forward.shape)
    dx = client.conv2d_transpose(dy, w, output_shape, strides, padding)
    assert dx.shape == output_shape
    assert_close(dx, ref_conv_transpose(dy, w, output_shape, strides, 1, padding), rtol=1e-4)
    # <conv2d(x), dy> == <x, conv2d_transpose(dy)>, both from the server.
    x = randn(*output_shape)
    y = client.conv2d(x, w, strides, padding)
    lhs, rhs = np.vdot(y.astype(np.float64), dy), np.vdot(x.astype(np.float64), dx)
    assert math.isclose(lhs, rhs, rel_tol=1e-4, abs_tol=1e-3)


def test_conv2d_transpose_default_padding_and_nchw(client):
    w, dy = randn(2, 2, 3, 4), randn(1, 4, 3, 4)
    dx = client.conv2d_transpose(to_first(dy), w, (1, 3, 8, 6), 2, data_format="NCHW")
    assert_close(dx, to_first(ref_conv_transpose(dy, w, (1, 8, 6, 3), 2, 1, "SAME")), rtol=1e-4)


def test_conv2d_transpose_dilated(client):
    w, dy = randn(3, 3, 2, 3), randn(1, 6, 5, 3)
    dx = client.conv2d_transpose(dy, w, [1, 6, 5, 2], 1, "SAME", dilations=2)
    assert_close(dx, ref_conv_transpose(dy, w, (1, 6, 5, 2), 1, 2, "SAME"), rtol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_transpose_1d(client, padding):
    w = randn(3, 2, 4)
    output_shape = (2, 11, 2)
    dy = randn(*ref_conv(np.zeros(output_shape, np.float32), w, 2, 1, padding).shape)
    dx = client.conv_transpose(dy, w, output_shape, 2, padding)
    assert_close(dx, ref_conv_transpose(dy, w, output_shape, 2, 1, padding), rtol=1e-4)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_transpose_explicit_padding(client, data_format):
    # TF 2's list padding: the forward conv2d of x (output_shape) with these
    # pads gives dy; height (7 + 1 + 2 - 3) // 2 + 1 = 4, width 5 + 0 + 1 - 2 + 1 = 5.
    w = randn(3, 2, 3, 4)
    pads = [(1, 2), (0, 1)]
    output_shape = (2, 7, 5, 3)
    dy = randn(2, 4, 5, 4)
    if data_format == "NHWC":
        tf_padding = [[0, 0], *pads, [0, 0]]
        dx = client.conv2d_transpose(dy, w, output_shape, [2, 1], tf_padding)
    else:
        tf_padding = [[0, 0], [0, 0], *pads]
        dx = to_last(client.conv2d_transpose(to_first(dy), w, (2, 3, 7, 5), [2, 1], tf_padding,
                                             data_format="NCHW"))
    assert_close(dx, ref_conv_transpose(dy, w, output_shape, [2, 1], 1, pads), rtol=1e-4)
    # The adjoint of the server's conv2d with the same explicit padding.
    x = randn(*output_shape)
    y = client.conv2d(x, w, [2, 1], [[0, 0], *pads, [0, 0]])
    assert y.shape == dy.shape
    lhs, rhs = np.vdot(y.astype(np.float64), dy), np.vdot(x.astype(np.float64), dx)
    assert math.isclose(lhs, rhs, rel_tol=1e-4, abs_tol=1e-3)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_transpose_spatial_output_shape(client, data_format):
    # output_shape (H, W): the batch is the input's, the channels the filter's output_channels.
    w, dy = randn(3, 3, 2, 4), randn(3, 4, 3, 4)
    expected = ref_conv_transpose(dy, w, (3, 8, 6, 2), 2, 1, "SAME")
    if data_format == "NHWC":
        dx = client.conv2d_transpose(dy, w, [8, 6], 2)
    else:
        dx = to_last(client.conv2d_transpose(to_first(dy), w, (8, 6), 2, data_format="NCHW"))
    assert dx.shape == (3, 8, 6, 2)
    assert_close(dx, expected, rtol=1e-4)
    # With explicit padding too: height 8 + 1 + 0 - 3 + 1 = 7, width (6 - 3) // 2 + 1 = 2.
    dy = randn(3, 7, 2, 4)
    pads = [(1, 0), (0, 0)]
    tf_padding = [[0, 0], *pads, [0, 0]] if data_format == "NHWC" else [[0, 0], [0, 0], *pads]
    if data_format == "NHWC":
        dx = client.conv2d_transpose(dy, w, [8, 6], [1, 2], tf_padding)
    else:
        dx = to_last(client.conv2d_transpose(to_first(dy), w, [8, 6], [1, 2], tf_padding,
                                             data_format="NCHW"))
    assert_close(dx, ref_conv_transpose(dy, w, (3, 8, 6, 2), [1, 2], 1, pads), rtol=1e-4)


def test_transposed_output_shape_and_padding_refusals(client):
    w, dy = randn(3, 3, 2, 4), randn(1, 4, 3, 4)
    # A spatial-only output_shape that the input does not fit: TF's message.
    with pytest.raises(convserve.ConvServeError) as error:
        client.conv2d_transpose(dy, w, [9, 6], 2)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Size of out_backprop doesn't match computed: actual = 4, computed = 5" in str(error.value)
    with pytest.raises(convserve.ConvServeError) as error:
        client.conv2d_transpose(dy, w, [1, 8, 6], 2)
    assert "Conv2DBackpropInput requires input_sizes to contain 4 values or 2 values, but got: 3" \
        in str(error.value)
    # conv_transpose picks its op by len(output_shape), so (H, W) is refused...
    with pytest.raises(convserve.ConvServeError) as error:
        client.conv_transpose(dy, w, [8, 6], 2)
    assert "output_shape must be of length 3, 4 or 5 but was 2." in str(error.value)
    # ... and takes a list padding only when 2-D, as conv2d_transpose does
    # (height 8 + 1 - 3 + 1 = 7, width (6 - 3) // 2 + 1 = 2).
    pads, dy = [[0, 0], [1, 0], [0, 0], [0, 0]], randn(1, 7, 2, 4)
    np.testing.assert_array_equal(client.conv_transpose(dy, w, (1, 8, 6, 2), [1, 2], pads),
                                  client.conv2d_transpose(dy, w, (1, 8, 6, 2), [1, 2], pads))
    with pytest.raises(convserve.ConvServeError) as error:
        client.conv_transpose(randn(1, 4, 4), randn(3, 2, 4), (1, 8, 2), 2, [[0, 0], [1, 0], [0, 0]])
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expected string for argument 'padding' not [[0, 0], [1, 0], [0, 0]]." \
        in str(error.value)
    with pytest.raises(ValueError):
        client.conv1d_transpose(randn(1, 4, 4), randn(3, 2, 4), (1, 8, 2), 2, [[0, 0], [1, 0], [0, 0]])
    with pytest.raises(ValueError):
        client.conv3d_transpose(randn(1, 2, 2, 2, 4), randn(1, 1, 1, 2, 4), (1, 2, 2, 2, 2), 1,
                                [[0, 0]] * 5)


@pytest.mark.parametrize("data_format", ["NWC", "NCW"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv1d_transpose(client, data_format, padding):
    w = randn(3, 2, 4)
    output_shape = (2, 11, 2)
    dy = randn(*ref_conv(np.zeros(output_shape, np.float32), w, 2, 1, padding).shape)
    expected = ref_conv_transpose(dy, w, output_shape, 2, 1, padding)
    if data_format == "NWC":
        dx = client.conv1d_transpose(dy, w, output_shape, 2, padding)
        # The same as conv_transpose of rank 1.
        np.testing.assert_array_equal(dx, client.conv_transpose(dy, w, output_shape, 2, padding))
    else:
        dx = to_last(client.conv1d_transpose(to_first(dy), w, (2, 2, 11), [1, 1, 2], padding,
                                             "NCW"))
    assert dx.shape == output_shape
    assert_close(dx, expected, rtol=1e-4)
    # The adjoint of the server's conv1d.
    x = randn(*output_shape)
    y = client.conv1d(x, w, 2, padding)
    lhs, rhs = np.vdot(y.astype(np.float64), dy), np.vdot(x.astype(np.float64), dx)
    assert math.isclose(lhs, rhs, rel_tol=1e-4, abs_tol=1e-3)


def test_conv1d_transpose_width_only_output_shape(client):
    # TF inserts the dummy height into output_shape: (W) becomes height W,
    # width 1, which fits the height of 1 only when W is 1.
    w = randn(3, 2, 4)
    dx = client.conv1d_transpose(randn(2, 1, 4), w, [1], 2)
    assert dx.shape == (2, 1, 2)
    with pytest.raises(convserve.ConvServeError) as error:
        client.conv1d_transpose(randn(2, 4, 4), w, [8], 2)
    assert "Conv2DCustomBackpropInput: Size of out_backprop doesn't match computed: actual = 1, " \
        "computed = 8 spatial_dim: 1 input: 8 filter: 1 output: 1 stride: 1 dilation: 1" \
        in str(error.value)


def test_conv3d_transpose(client):
    w, dy = randn(2, 2, 3, 2, 3), randn(1, 2, 3, 2, 3)
    output_shape = (1, 4, 6, 4, 2)
    dx = client.conv3d_transpose(dy, w, output_shape, [1, 2, 2, 2, 1], "SAME")
    assert_close(dx, ref_conv_transpose(dy, w, output_shape, 2, 1, "SAME"), rtol=1e-4)
    # conv_transpose picks the 3-D op from len(output_shape).
    assert_close(client.conv_transpose(dy, w, output_shape, 2), dx)


# ---------------------------------------------------------------------------
# Element types.


def test_float64(client):
    x, w = randn(2, 6, 5, 3, dtype=np.float64), randn(3, 3, 3, 2, dtype=np.float64)
    y = client.conv2d(x, w, 1, "SAME")
    assert y.dtype == np.float64
    assert_close(y, ref_conv(x, w, 1, 1, "SAME"), rtol=1e-12)


def test_float16(client):
    x, w = randn(2, 6, 5, 3, dtype=np.float16), randn(3, 3, 3, 2, dtype=np.float16)
    y = client.conv2d(x, w, 1, "SAME")
    assert y.dtype == np.float16
    expected = ref_conv(x, w, 1, 1, "SAME")
    # Accumulated in float, rounded once to half: within an ulp or so.
    assert np.all(np.abs(y.astype(np.float64) - expected) <= 2 ** -10 * np.abs(expected) + 1e-3)


def test_int32_exact(client):
    x = RNG.integers(-50, 50, (2, 6, 5, 3)).astype(np.int32)
    w = RNG.integers(-50, 50, (3, 3, 3, 4)).astype(np.int32)
    y = client.conv2d(x, w, [1, 2], "SAME")
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref_conv(x, w, [1, 2], 1, "SAME").astype(np.int32))
    np.testing.assert_array_equal(client.conv1d(x[:, 0], w[0], 1, "VALID"),
                                  ref_conv(x[:, 0], w[0], 1, 1, "VALID").astype(np.int32))


def test_int32_wraps_on_overflow(client):
    x = np.full((1, 2, 2, 1), 2 ** 30, dtype=np.int32)
    w = np.full((2, 2, 1, 1), 3, dtype=np.int32)
    y = client.conv2d(x, w, 1, "VALID")
    # 12 * 2**30 wrapped to 32 bits.
    assert y.item() == np.int64(12 * 2 ** 30).astype(np.int32)


def test_bfloat16_helpers():
    x = np.array([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 0.0, -0.0, np.inf, -np.inf,
                  3.4e38, 1e-40], dtype=np.float32)
    bits = convserve.to_bfloat16_bits(x)
    assert bits.dtype == np.uint16
    # Ties to even: 1 + 2^-8 -> 1.0, 1 + 3*2^-8 -> 1 + 2^-6; 3.4e38 overflows to inf.
    assert [hex(b) for b in bits] == ["0x3f80", "0x3f80", "0x3f82", "0xc020", "0x0", "0x8000",
                                      "0x7f80", "0xff80", "0x7f80", "0x1"]
    back = convserve.from_bfloat16_bits(bits)
    assert back.dtype == np.float32
    assert back[1] == 1.0 and back[2] == 1 + 2 ** -6
    assert np.isnan(convserve.from_bfloat16_bits(convserve.to_bfloat16_bits(np.float32(np.nan))))
    r = randn(1000)
    np.testing.assert_array_equal(
        convserve.from_bfloat16_bits(convserve.to_bfloat16_bits(r)).view(np.uint32) & 0xFFFF, 0)


def test_bfloat16(client):
    x, w = randn(2, 7, 6, 3), randn(3, 3, 3, 4)
    y = client.conv2d(x, w, 2, "SAME", dtype="bfloat16")
    assert y.dtype == np.float32
    # The result is a bfloat16 widened to float32: its low 16 bits are zero.
    assert not np.any(y.view(np.uint32) & 0xFFFF)
    xr = convserve.from_bfloat16_bits(convserve.to_bfloat16_bits(x))
    wr = convserve.from_bfloat16_bits(convserve.to_bfloat16_bits(w))
    expected = ref_conv(xr, wr, 2, 1, "SAME")
    assert np.all(np.abs(y - expected) <= 2 ** -8 * np.abs(expected) + 1e-3)


def test_bfloat16_other_ops(client):
    x, w = randn(1, 9, 4), randn(3, 4, 2)
    y = client.conv1d(x, w, 1, "SAME", dtype="bfloat16", bias=np.ones(2, np.float32))
    xr = convserve.from_bfloat16_bits(convserve.to_bfloat16_bits(x))
    wr = convserve.from_bfloat16_bits(convserve.to_bfloat16_bits(w))
    expected = ref_conv(xr, wr, 1, 1, "SAME") + 1
    assert np.all(np.abs(y - expected) <= 2 ** -7 * np.abs(expected) + 1e-2)


def test_python_lists_convert_like_tf_constant(client):
    y = client.conv2d([[[[1.0], [2.0]], [[3.0], [4.0]]]], [[[[1.0]]]], 1, "VALID")
    assert y.dtype == np.float32 and y.shape == (1, 2, 2, 1)
    yi = client.conv2d([[[[1], [2]], [[3], [4]]]], [[[[2]]]], 1, "VALID")
    assert yi.dtype == np.int32 and yi.ravel().tolist() == [2, 4, 6, 8]


def test_unsupported_dtype_is_refused_locally(client):
    with pytest.raises(TypeError, match="int64"):
        client.conv2d(np.ones((1, 2, 2, 1), np.int64), np.ones((1, 1, 1, 1), np.int64), 1, "VALID")


# ---------------------------------------------------------------------------
# Registered filters, the fused epilogue, errors, deadlines.


def test_register_filter_then_call_by_id(client):
    x, w = randn(2, 6, 6, 3), randn(3, 3, 3, 4)
    filter_id = client.register_filter(w)
    assert isinstance(filter_id, str) and filter_id
    assert client.register_filter(w.copy()) == filter_id  # content-derived
    assert_close(client.conv2d(x, filter_id, 1, "SAME"), ref_conv(x, w, 1, 1, "SAME"))
    np.testing.assert_array_equal(client.conv2d(x, filter_id, 1, "SAME"),
                                  client.conv2d(x, w, 1, "SAME"))


def test_register_bfloat16_filter(client):
    x, w = randn(1, 5, 5, 2), randn(2, 2, 2, 3)
    filter_id = client.register_filter(w, dtype="bfloat16")
    np.testing.assert_array_equal(client.conv2d(x, filter_id, 1, "VALID", dtype="bfloat16"),
                                  client.conv2d(x, w, 1, "VALID", dtype="bfloat16"))


def test_unknown_filter_id_is_not_found(client):
    with pytest.raises(convserve.ConvServeError) as info:
        client.conv2d(randn(1, 4, 4, 1), "0" * 64, 1, "SAME")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("activation,fn", [
    ("relu", lambda v: np.maximum(v, 0)),
    ("relu6", lambda v: np.clip(v, 0, 6)),
    ("tanh", np.tanh),
    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))),
    ("leaky_relu", lambda v: np.where(v > 0, v, 0.2 * v)),
    ("elu", lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0)))),
    (None, lambda v: v),
])
def test_bias_and_activation(client, activation, fn):
    x, w, b = randn(2, 6, 5, 3), randn(3, 3, 3, 4), randn(4)
    y = client.conv2d(x, w, 1, "SAME", bias=b, activation=activation)
    assert_close(y, fn(ref_conv(x, w, 1, 1, "SAME") + b), rtol=1e-4)


def test_bias_relu_on_transpose(client):
    w, dy, b = randn(2, 2, 3, 4), randn(1, 3, 3, 4), randn(3)
    y = client.conv2d_transpose(dy, w, [1, 6, 6, 3], 2, bias=b, activation="relu")
    expected = np.maximum(ref_conv_transpose(dy, w, (1, 6, 6, 3), 2, 1, "SAME") + b, 0)
    assert_close(y, expected, rtol=1e-4)


def test_invalid_request_raises_tf_message(client):
    with pytest.raises(convserve.ConvServeError) as info:
        client.conv2d(randn(1, 5, 5, 1), randn(3, 3, 1, 1), [2, 1, 1, 1], "SAME")
    error = info.value
    assert isinstance(error, Exception)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert ("Current implementation does not yet support strides in the batch and depth "
            "dimensions.") in error.message
    assert "INVALID_ARGUMENT" in str(error)


def test_invalid_depth_message(client):
    with pytest.raises(convserve.ConvServeError) as info:
        client.conv2d(randn(1, 5, 5, 3), randn(3, 3, 2, 1), 1, "SAME")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input depth must be evenly divisible by filter depth: 3 vs 2" in info.value.message


def test_invalid_transpose_output_shape(client):
    with pytest.raises(convserve.ConvServeError) as info:
        client.conv2d_transpose(randn(1, 3, 3, 2), randn(2, 2, 1, 2), [1, 9, 9, 1], 2)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Conv2DCustomBackpropInput" in info.value.message


def test_explicit_padding_refused_locally_where_tf_has_none(client):
    with pytest.raises(ValueError):
        client.conv3d(randn(1, 2, 2, 2, 1), randn(1, 1, 1, 1, 1), 1, [[0, 0]] * 5)


def test_tiny_deadline_is_deadline_exceeded(client):
    # The deadline has passed before the request can even be sent, so this is
    # deterministic whatever the machine's speed.
    x, w = randn(2, 64, 64, 32), randn(5, 5, 32, 64)
    with pytest.raises(convserve.ConvServeError) as info:
        client.conv2d(x, w, 1, "SAME", timeout=1e-6)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The client and server are fine afterwards.
    assert client.health() == "SERVING"


# ---------------------------------------------------------------------------
# Streaming.


def _stream_cases():
    x, w = randn(2, 6, 6, 3), randn(3, 3, 3, 4)
    cases = []
    for i in range(12):
        xi = x + i
        cases.append((("conv2d", (xi, w, 1 + i % 2, "SAME")), ref_conv(xi, w, 1 + i % 2, 1, "SAME")))
    dw = randn(2, 2, 3, 2)
    cases.append((convserve.Request("depthwise_conv2d", x, dw, [1, 1, 1, 1], "VALID"), ref_depthwise(x, dw)))
    x1, w1 = randn(1, 10, 2), randn(3, 2, 3)
    cases.append((("conv1d", {"input": x1, "filters": w1, "stride": 2, "padding": "VALID"}),
                  ref_conv(x1, w1, 2, 1, "VALID")))
    cases.append((("conv2d", (x, w, 1, "VALID"), {"activation": "relu"}),
                  np.maximum(ref_conv(x, w, 1, 1, "VALID"), 0)))
    return cases


def test_stream_in_order(client):
    cases = _stream_cases()
    results = list(client.stream([request for request, _ in cases]))
    assert len(results) == len(cases)
    for got, (_, expected) in zip(results, cases):
        assert_close(got, expected)


def test_stream_as_completed(client):
    cases = _stream_cases()
    seen = {}
    for index, result in client.stream([request for request, _ in cases], ordered=False):
        seen[index] = result
    assert sorted(seen) == list(range(len(cases)))
    for index, (_, expected) in enumerate(cases):
        assert_close(seen[index], expected)


def test_stream_error_does_not_stop_the_stream(client):
    x, w = randn(1, 5, 5, 1), randn(3, 3, 1, 1)
    requests = [("conv2d", (x, w, 1, "SAME")),
                ("conv2d", (x, w, [2, 1, 1, 1], "SAME")),
                ("conv2d", (x, w, 1, "VALID"))]
    results = list(client.stream(requests, return_exceptions=True))
    assert_close(results[0], ref_conv(x, w, 1, 1, "SAME"))
    assert isinstance(results[1], convserve.ConvServeError)
    assert results[1].code == grpc.StatusCode.INVALID_ARGUMENT
    assert "strides in the batch and depth dimensions" in results[1].message
    assert_close(results[2], ref_conv(x, w, 1, 1, "VALID"))
    # Without return_exceptions the failed request raises in its turn.
    stream = client.stream(requests)
    assert_close(next(stream), ref_conv(x, w, 1, 1, "SAME"))
    with pytest.raises(convserve.ConvServeError):
        next(stream)


def test_stream_empty(client):
    assert list(client.stream([])) == []


# ---------------------------------------------------------------------------
# Service.


def test_health(client):
    assert client.health() == "SERVING"
    assert client.health("convserve.v1.ConvService") == "SERVING"


def test_server_info_lists_the_eleven_ops(client):
    info = client.server_info()
    assert sorted(info["ops"]) == sorted(convserve.OPS)
    assert len(info["ops"]) == 11
    assert "DATA_TYPE_BFLOAT16" in info["dtypes"]
    assert info["version"]
    assert info["limits"]["max_message_bytes"] > 0 and info["limits"]["workers"] >= 1
    assert info["backends"] and all(b["name"] for b in info["backends"])
    raw = client.server_info(raw=True)
    assert list(raw.ops) == info["ops"]


def test_context_manager_closes(server_address):
    with convserve.Client(server_address) as c:
        assert c.health() == "SERVING"
    with pytest.raises(Exception):
        c.health(timeout=5)


def test_signatures_mirror_tf():
    import inspect
    expected = {
        "convolution": ["input", "filters", "strides", "padding", "data_format", "dilations", "name"],
        "conv1d": ["input", "filters", "stride", "padding", "data_format", "dilations", "name"],
        "conv2d": ["input", "filters", "strides", "padding", "data_format", "dilations", "name"],
        "conv3d": ["input", "filters", "strides", "padding", "data_format", "dilations", "name"],
        "depthwise_conv2d": ["input", "filter", "strides", "padding", "data_format", "dilations",
                             "name"],
        "separable_conv2d": ["input", "depthwise_filter", "pointwise_filter", "strides", "padding",
                             "data_format", "dilations", "name"],
        "atrous_conv2d": ["value", "filters", "rate", "padding", "name"],
        "conv2d_transpose": ["input", "filters", "output_shape", "strides", "padding",
                             "data_format", "dilations", "name"],
        "conv3d_transpose": ["input", "filters", "output_shape", "strides", "padding",
                             "data_format", "dilations", "name"],
        "conv_transpose": ["input", "filters", "output_shape", "strides", "padding", "data_format",
                           "dilations", "name"],
    }
    for op, names in expected.items():
        params = inspect.signature(getattr(convserve.Client, op)).parameters
        positional = [p.name for p in params.values()
                      if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "self"]
        assert positional == names, op
        keyword_only = {p.name for p in params.values() if p.kind == p.KEYWORD_ONLY}
        assert keyword_only == {"bias", "activation", "dtype", "timeout"}, op
    sig = inspect.signature(convserve.Client.conv2d_transpose).parameters
    assert sig["padding"].default == "SAME" and sig["data_format"].default == "NHWC"
    assert inspect.signature(convserve.Client.convolution).parameters["padding"].default == "VALID"


def test_backend_option_picks_the_pool_and_an_unknown_one_is_not_found(server_address):
    x, w = randn(1, 6, 6, 3), randn(3, 3, 3, 4)
    with convserve.Client(server_address, timeout=60, backend="reference") as client:
        reply = client.call(client._with_options(convserve.build_request("conv2d", x, w, 1, "SAME")))
        assert reply.timing.backend == "reference"
        assert_close(client.conv2d(x, w, 1, "SAME"), ref_conv(x, w, padding="SAME"))
    with convserve.Client(server_address, timeout=60, backend="no-such-backend") as client:
        with pytest.raises(convserve.ConvServeError) as error:
            client.conv2d(x, w, 1, "SAME")
        assert error.value.code == grpc.StatusCode.NOT_FOUND


def test_allow_reduced_precision_is_sent_and_stays_close(server_address):
    x, w = randn(1, 8, 8, 16), randn(3, 3, 16, 8)
    with convserve.Client(server_address, timeout=60, allow_reduced_precision=True) as client:
        request = client._with_options(convserve.build_request("conv2d", x, w, 1, "SAME"))
        assert request.allow_reduced_precision
        # bfloat16 products where the CPU multiplies them: within 2^-7 of the sum of |products|.
        magnitude = ref_conv(np.abs(x), np.abs(w), padding="SAME")
        got = client.conv2d(x, w, 1, "SAME")
        assert np.all(np.abs(got - ref_conv(x, w, padding="SAME")) <= magnitude * 2.0**-7 + 1e-6)
