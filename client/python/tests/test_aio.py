"""convserve.aio.Client against the real server.

The blocking client is checked against a NumPy reference in test_client.py;
here every async call must give exactly what the blocking one gives for the
same request (the two share the request building and reply decoding), and
the asyncio-specific parts (concurrency, awaiting, async streaming, the async
context manager) are exercised. No pytest plugin is needed: each test runs
its coroutine with asyncio.run, creating its client inside that loop.
"""

import asyncio
import functools
import inspect

import grpc
import numpy as np
import pytest

import convserve
import convserve.aio

RNG = np.random.default_rng(20240602)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def run_async(test):
    """Runs the coroutine function `test` with asyncio.run (fixtures still apply)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


def _op_cases():
    x4, w4 = randn(2, 7, 6, 3), randn(3, 3, 3, 4)
    dw, pw = randn(3, 3, 3, 2), randn(1, 1, 6, 5)
    x3, w3 = randn(2, 9, 4), randn(3, 4, 5)
    x5, w5 = randn(1, 4, 5, 4, 2), randn(2, 2, 2, 2, 3)
    wt = randn(3, 3, 3, 4)  # conv2d_transpose: [h, w, out, in]
    return [
        ("convolution", (x4, w4), {"strides": 2, "padding": "SAME"}),
        ("conv1d", (x3, w3, 2, "SAME"), {}),
        ("conv2d", (x4, w4, [1, 2], [[0, 0], [1, 2], [0, 1], [0, 0]]), {"dilations": 1}),
        ("conv3d", (x5, w5, 1, "VALID"), {}),
        ("depthwise_conv2d", (x4, dw, [1, 1, 1, 1], "SAME"), {"dilations": 2}),
        ("separable_conv2d", (x4, dw, pw, [1, 2, 2, 1], "VALID"), {}),
        ("atrous_conv2d", (x4, w4, 2, "SAME"), {}),
        ("conv1d_transpose", (randn(2, 5, 5), randn(3, 2, 5), (2, 10, 2), 2), {}),
        ("conv2d_transpose", (randn(2, 4, 3, 4), wt, (2, 7, 6, 3), 2), {}),
        ("conv2d_transpose", (randn(2, 4, 3, 4), wt, (7, 6), 2, [[0, 0], [1, 1], [1, 1], [0, 0]]),
         {}),
        ("conv3d_transpose", (randn(1, 2, 3, 2, 2), randn(2, 2, 2, 3, 2), (1, 4, 6, 4, 3), 2),
         {}),
        ("conv_transpose", (randn(2, 5, 5), randn(3, 2, 5), (2, 10, 2), 2), {"padding": "SAME"}),
    ]


def test_every_op_gives_what_the_blocking_client_gives(server_address, client):
    cases = _op_cases()
    assert sorted({op for op, _, _ in cases}) == sorted(convserve.OPS)
    expected = [getattr(client, op)(*args, **kwargs) for op, args, kwargs in cases]

    async def main():
        async with convserve.aio.Client(server_address, timeout=60) as aclient:
            return [await getattr(aclient, op)(*args, **kwargs) for op, args, kwargs in cases]

    for (op, _, _), got, want in zip(cases, asyncio.run(main()), expected):
        assert got.dtype == want.dtype and got.shape == want.shape, op
        np.testing.assert_array_equal(got, want, err_msg=op)


@run_async
async def test_concurrent_calls_on_one_channel(server_address, client):
    w, b = randn(3, 3, 3, 4), randn(4)
    xs = [randn(1, 8, 8, 3) for _ in range(24)]
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        results = await asyncio.gather(*(
            aclient.conv2d(x, w, 1 + i % 2, "SAME", bias=b, activation="relu")
            for i, x in enumerate(xs)))
    for i, (x, y) in enumerate(zip(xs, results)):
        np.testing.assert_array_equal(
            y, client.conv2d(x, w, 1 + i % 2, "SAME", bias=b, activation="relu"))


@run_async
async def test_dtypes_and_bfloat16(server_address, client):
    x, w = randn(1, 5, 5, 2), randn(2, 2, 2, 3)
    xi = RNG.integers(-9, 9, (1, 5, 5, 2)).astype(np.int32)
    wi = RNG.integers(-9, 9, (2, 2, 2, 3)).astype(np.int32)
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        for args, kwargs in [((x.astype(np.float64), w.astype(np.float64)), {}),
                             ((x.astype(np.float16), w.astype(np.float16)), {}),
                             ((xi, wi), {}),
                             ((x, w), {"dtype": "bfloat16"}),
                             (([[[[1.0], [2.0]], [[3.0], [4.0]]]], [[[[2.0]]]]), {})]:
            got = await aclient.conv2d(*args, 1, "VALID", **kwargs)
            want = client.conv2d(*args, 1, "VALID", **kwargs)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


@run_async
async def test_register_filter_health_server_info_and_call(server_address, client):
    x, w = randn(1, 6, 6, 3), randn(3, 3, 3, 2)
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        filter_id = await aclient.register_filter(w)
        assert filter_id == client.register_filter(w)
        np.testing.assert_array_equal(await aclient.conv2d(x, filter_id, 1, "SAME"),
                                      client.conv2d(x, w, 1, "SAME"))
        assert await aclient.register_filter(w, dtype="bfloat16") == \
            client.register_filter(w, dtype="bfloat16")
        assert await aclient.health() == "SERVING"
        assert await aclient.health("convserve.v1.ConvService") == "SERVING"
        info = await aclient.server_info()
        assert sorted(info["ops"]) == sorted(convserve.OPS)
        assert info["version"] == client.server_info()["version"]
        assert list((await aclient.server_info(raw=True)).ops) == info["ops"]
        reply = await aclient.call(convserve.build_request("conv2d", x, w, 1, "VALID"))
        assert reply.HasField("output") and reply.HasField("timing")


@run_async
async def test_errors(server_address):
    x, w = randn(1, 5, 5, 1), randn(3, 3, 1, 1)
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        with pytest.raises(convserve.ConvServeError) as info:
            await aclient.conv2d(x, w, [2, 1, 1, 1], "SAME")
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert ("Current implementation does not yet support strides in the batch and depth "
                "dimensions.") in info.value.message
        with pytest.raises(convserve.ConvServeError) as info:
            await aclient.conv2d(x, "0" * 64, 1, "SAME")
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        # Mistakes caught locally raise when the call is awaited, like any
        # coroutine's, never when it is created.
        call = aclient.conv3d(randn(1, 2, 2, 2, 1), randn(1, 1, 1, 1, 1), 1, [[0, 0]] * 5)
        with pytest.raises(ValueError):
            await call
        with pytest.raises(TypeError, match="int64"):
            await aclient.conv2d(np.ones((1, 2, 2, 1), np.int64), np.ones((1, 1, 1, 1), np.int64),
                                 1, "VALID")
        with pytest.raises(convserve.ConvServeError) as info:
            await aclient.conv2d(randn(2, 64, 64, 32), randn(5, 5, 32, 64), 1, "SAME",
                                 timeout=1e-6)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await aclient.health() == "SERVING"


def _stream_requests():
    x, w = randn(2, 6, 6, 3), randn(3, 3, 3, 4)
    requests = [("conv2d", (x + i, w, 1 + i % 2, "SAME")) for i in range(10)]
    requests.append(convserve.Request("depthwise_conv2d", x, randn(2, 2, 3, 2), [1, 1, 1, 1],
                                      "VALID"))
    requests.append(("conv1d", {"input": randn(1, 10, 2), "filters": randn(3, 2, 3),
                                "stride": 2, "padding": "VALID"}))
    requests.append(("conv2d", (x, w, 1, "VALID"), {"activation": "relu"}))
    return requests


@run_async
async def test_stream(server_address, client):
    requests = _stream_requests()
    expected = list(client.stream(requests))
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        got = [y async for y in aclient.stream(requests)]
        assert len(got) == len(expected)
        for y, want in zip(got, expected):
            np.testing.assert_array_equal(y, want)
        seen = {index: y async for index, y in aclient.stream(requests, ordered=False)}
        assert sorted(seen) == list(range(len(requests)))
        for index, want in enumerate(expected):
            np.testing.assert_array_equal(seen[index], want)
        assert [y async for y in aclient.stream([])] == []


@run_async
async def test_stream_errors(server_address, client):
    x, w = randn(1, 5, 5, 1), randn(3, 3, 1, 1)
    requests = [("conv2d", (x, w, 1, "SAME")),
                ("conv2d", (x, w, [2, 1, 1, 1], "SAME")),
                ("conv2d", (x, w, 1, "VALID"))]
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        results = [r async for r in aclient.stream(requests, return_exceptions=True)]
        np.testing.assert_array_equal(results[0], client.conv2d(x, w, 1, "SAME"))
        assert isinstance(results[1], convserve.ConvServeError)
        assert results[1].code == grpc.StatusCode.INVALID_ARGUMENT
        np.testing.assert_array_equal(results[2], client.conv2d(x, w, 1, "VALID"))
        # Without return_exceptions the failed request raises in its turn.
        stream = aclient.stream(requests)
        np.testing.assert_array_equal(await stream.__anext__(), results[0])
        with pytest.raises(convserve.ConvServeError):
            await stream.__anext__()
        await stream.aclose()
        # Items are built before anything is sent: a bad one raises at once.
        with pytest.raises(TypeError):
            aclient.stream([42])


@run_async
async def test_close(server_address):
    async with convserve.aio.Client(server_address) as aclient:
        assert await aclient.health() == "SERVING"
    with pytest.raises(Exception):
        await aclient.health(timeout=5)
    other = convserve.aio.Client(server_address)
    assert await other.health(timeout=30) == "SERVING"
    await other.close()


def test_same_methods_and_signatures_as_the_blocking_client():
    public = {name for name, _ in inspect.getmembers(convserve.Client, inspect.isfunction)
              if not name.startswith("_")}
    assert {*convserve.OPS, "call", "close", "health", "register_filter", "server_info",
            "stream"} <= public
    for name in public:
        blocking = inspect.signature(getattr(convserve.Client, name))
        asynchronous = inspect.signature(getattr(convserve.aio.Client, name))
        assert list(blocking.parameters.values()) == list(asynchronous.parameters.values()), name
    for name in ("call", "close", "health", "register_filter", "server_info"):
        assert inspect.iscoroutinefunction(getattr(convserve.aio.Client, name)), name
    assert inspect.isasyncgenfunction(convserve.aio.Client._stream)


@run_async
async def test_op_methods_return_coroutines(server_address):
    async with convserve.aio.Client(server_address, timeout=60) as aclient:
        call = aclient.conv2d(np.ones((1, 3, 3, 1), np.float32), np.ones((1, 1, 1, 1), np.float32),
                              1, "VALID")
        assert inspect.iscoroutine(call)
        task = asyncio.create_task(call)
        np.testing.assert_array_equal(await task, np.ones((1, 3, 3, 1), np.float32))
