"""convserve.aio.Client: the asyncio client (on ``grpc.aio``).

It has ``convserve.Client``'s constructor and methods, each a coroutine to
await, and ``stream`` an async iterator::

    import convserve.aio

    async with convserve.aio.Client("127.0.0.1:50051") as client:
        y = await client.conv2d(x, w, strides=2, padding="SAME")
        ys = await asyncio.gather(*(client.conv2d(x, w, 1, "SAME") for x in xs))
        async for y in client.stream(requests):
            ...

Requests are built and replies decoded by the same code as the blocking
client's (``convserve._base``, ``convserve.request_builder``,
``convserve.tensors``); an op's arguments are checked and its arrays encoded
when the call is awaited. Create the client inside the event loop that uses
it (``grpc.aio`` channels belong to one loop).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Coroutine, Iterable, Optional

import grpc
import grpc.aio

from convserve._base import (
    ClientBase,
    StreamResult,
    StreamResults,
    health_status,
    info_dict,
    register_request,
)
from convserve._typing import CLIENT_TIMEOUT, Array, ArrayLike, DType, Timeout
from convserve.errors import rpc_error
from convserve.request_builder import StreamItem
from convserve.tensors import decode_tensor
from convserve.v1 import convserve_pb2 as pb


class Client(ClientBase[Coroutine[Any, Any, Array]]):
    """A connection to a ConvServe server for asyncio: ``convserve.Client``'s
    arguments and methods, with every call a coroutine.

    The op methods (``conv2d`` and the rest, with TensorFlow 2's arguments and
    the keyword-only ``bias=``, ``activation=``, ``dtype=``, ``timeout=``)
    return awaitables of the result array; ``register_filter``,
    ``server_info``, ``health``, ``call`` and ``close`` are coroutines;
    ``stream`` is an async iterator. It is an async context manager
    (``async with``), closing the channel on exit.
    """

    _secure_channel = staticmethod(grpc.aio.secure_channel)
    _insecure_channel = staticmethod(grpc.aio.insecure_channel)

    # -- plumbing ----------------------------------------------------------

    @property
    def channel(self) -> grpc.aio.Channel:
        """The underlying grpc.aio.Channel."""
        return self._channel

    async def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Any], request: Any, timeout: Timeout) -> Any:
        try:
            return await method(request, timeout=self._timeout(timeout))
        except grpc.RpcError as error:  # grpc.aio.AioRpcError
            raise rpc_error(error) from None

    async def _run(self, build: Callable[[], pb.ConvRequest], timeout: Timeout) -> Array:
        reply = await self.call(self._with_options(build()), timeout=timeout)
        return decode_tensor(reply.output)

    async def call(self, request: pb.ConvRequest, *,
                   timeout: Timeout = CLIENT_TIMEOUT) -> pb.ConvResponse:
        """Sends one ConvRequest proto; returns the ConvResponse proto (with timing)."""
        return await self._unary(self._stub.Conv, request, timeout)

    # -- service -----------------------------------------------------------

    async def register_filter(self, filter: ArrayLike, *, dtype: DType = None,
                              timeout: Timeout = CLIENT_TIMEOUT) -> str:
        """Stores `filter` on the server; returns its id (as ``convserve.Client.register_filter``)."""
        reply = await self._unary(self._stub.RegisterFilter, register_request(filter, dtype),
                                  timeout)
        return str(reply.filter_id)

    async def server_info(self, *, raw: bool = False, timeout: Timeout = CLIENT_TIMEOUT) -> Any:
        """The server's version, ops, dtypes, backends and limits: a dict, or the
        ServerInfo proto with ``raw=True`` (as ``convserve.Client.server_info``)."""
        info = await self._unary(self._stub.GetServerInfo, pb.GetServerInfoRequest(), timeout)
        return info if raw else info_dict(info)

    async def health(self, service: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", "UNKNOWN" or
        "SERVICE_UNKNOWN". `service` is "" (the server) or "convserve.v1.ConvService"."""
        method, request = self._health_call(service)
        return health_status(await self._unary(method, request, timeout))

    # -- streaming ---------------------------------------------------------

    def stream(self, requests: Iterable[StreamItem], *, ordered: bool = True,
               return_exceptions: bool = False,
               timeout: Timeout = CLIENT_TIMEOUT) -> AsyncIterator[StreamResult]:
        """Runs many ops on one ConvStream call; an async iterator of results.

        The arguments and results are those of ``convserve.Client.stream``:
        results in request order (or ``(index, result)`` as completed with
        ``ordered=False``); a refused request raises its ConvServeError in its
        turn, or is yielded with ``return_exceptions=True``. All requests are
        encoded here, before the first is sent.
        """
        results = StreamResults(requests, ordered, return_exceptions)
        for request in results.requests:
            self._with_options(request)
        return self._stream(results, self._timeout(timeout))

    async def _stream(self, results: StreamResults,
                      timeout: Optional[float]) -> AsyncIterator[StreamResult]:
        if not results.requests:
            return
        call = self._stub.ConvStream(iter(results.requests), timeout=timeout)
        try:
            try:
                async for reply in call:
                    for item in results.add(reply):
                        yield results.emit(item)
            except grpc.RpcError as error:
                raise rpc_error(error) from None
            results.finish()
        finally:
            call.cancel()  # no-op once the call has finished
