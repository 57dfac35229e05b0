"""convserve.Client: tf.nn's convolution ops, one blocking gRPC call each.

Every op method has TensorFlow 2's name, positional arguments and defaults
(``name`` is accepted and ignored), takes NumPy arrays and returns a NumPy
array; the keyword-only extras (``bias=``, ``activation=``, ``dtype=``,
``timeout=``) are described on ``Client``. ``convserve.aio.Client`` has the
same methods for asyncio.

This module makes the blocking calls (unary and streaming) on a
``grpc.Channel``. The channel set-up and the op methods are
``convserve._base.ClientBase``'s, shared with the asyncio client; requests are
built by ``convserve.request_builder``, arrays are converted by
``convserve.tensors`` and errors are ``convserve.errors.ConvServeError``; the
names this module has always offered (``OPS``, ``ConvServeError``,
``Request``, ``build_request``, ``build_<op>``, ``decode_tensor``) are
re-exported here unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional

import grpc

from convserve._base import (
    ClientBase,
    StreamResult,
    StreamResults,
    health_status,
    info_dict,
    register_request,
)
from convserve._typing import CLIENT_TIMEOUT, Array, ArrayLike, DType, Timeout
from convserve.errors import ConvServeError, rpc_error
from convserve.request_builder import (
    OPS,
    Request,
    StreamItem,
    as_request,
    build_atrous_conv2d,
    build_conv1d,
    build_conv1d_transpose,
    build_conv2d,
    build_conv2d_transpose,
    build_conv3d,
    build_conv3d_transpose,
    build_conv_transpose,
    build_convolution,
    build_depthwise_conv2d,
    build_request,
    build_separable_conv2d,
)
from convserve.tensors import Encoder, decode_tensor
from convserve.v1 import convserve_pb2 as pb

# Client, and the names this module has always offered.
__all__ = [
    "Client", "ConvServeError", "Encoder", "OPS", "Request", "StreamItem", "as_request",
    "build_atrous_conv2d", "build_conv1d", "build_conv1d_transpose", "build_conv2d",
    "build_conv2d_transpose", "build_conv3d", "build_conv3d_transpose", "build_conv_transpose",
    "build_convolution", "build_depthwise_conv2d", "build_request", "build_separable_conv2d",
    "decode_tensor",
]


class Client(ClientBase[Array]):
    """A connection to a ConvServe server, with blocking calls.

    Args:
        address: ``"host:port"``.
        max_message_mb: largest request or reply this client sends or accepts.
        timeout: default deadline of every call, in seconds (None: none).
        root_certificates, private_key, certificate_chain: PEM bytes, or paths
            to PEM files. With any of them the channel uses TLS
            (``grpc.ssl_channel_credentials``); root_certificates alone is
            server-authenticated TLS, all three is mutual TLS. Without them the
            channel is plaintext.
        tls: force TLS with the system's root certificates (default: TLS
            exactly when a certificate is given).
        options: extra gRPC channel options, e.g.
            ``[("grpc.ssl_target_name_override", "convserve.internal")]``.
        token, token_file: a bearer token (or a file holding it) sent as
            ``authorization: Bearer <token>`` on every call, for a server run
            with ``--auth-tokens-file``. Needs TLS: a token is never sent in
            plaintext (ValueError).
        allow_reduced_precision: let the server compute float32 ops in a
            reduced precision with float32 in and out (TF32 on a GPU,
            bfloat16 products on a CPU with bfloat16 hardware), as
            TensorFlow's TF32 opt-in does; faster, with a larger rounding
            error. Off by default; other dtypes ignore it.
        backend: the backend every op computes on, as ``server_info()``
            lists them (e.g. ``"cuda"``, ``"onednn"``); None: the server
            routes each request.

    Every op method has TensorFlow 2's name, positional arguments and defaults
    (``name`` is accepted and ignored), takes NumPy arrays (or anything
    ``np.asarray`` takes) and returns a NumPy array. Keyword-only extras on
    every op:

    - ``bias=``: 1-D array (or registered filter id), length = output
      channels, added to the result (the server's fused epilogue);
    - ``activation=``: ``"relu"``, ``"relu6"``, ``"elu"``, ``"leaky_relu"``
      (alpha 0.2), ``"sigmoid"``, ``"tanh"`` or ``None``, applied after the
      bias;
    - ``dtype=``: ``None`` (send each array in its own dtype), ``"bfloat16"``
      (round float32 arrays to bfloat16 before sending; the result comes back
      as float32), or ``"float16"``/``"float32"``/``"float64"``/``"int32"``
      (cast every array to that dtype first);
    - ``timeout=``: deadline of this call in seconds (default: the client's).

    The client is a context manager; ``close()`` closes the channel.
    """

    _secure_channel = staticmethod(grpc.secure_channel)
    _insecure_channel = staticmethod(grpc.insecure_channel)

    # -- plumbing ----------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        """The underlying grpc.Channel."""
        return self._channel

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _unary(self, method: Callable[..., Any], request: Any, timeout: Timeout) -> Any:
        try:
            return method(request, timeout=self._timeout(timeout))
        except grpc.RpcError as error:
            raise rpc_error(error) from None

    def _run(self, build: Callable[[], pb.ConvRequest], timeout: Timeout) -> Array:
        return decode_tensor(self.call(self._with_options(build()), timeout=timeout).output)

    def call(self, request: pb.ConvRequest, *, timeout: Timeout = CLIENT_TIMEOUT) -> pb.ConvResponse:
        """Sends one ConvRequest proto; returns the ConvResponse proto (with timing)."""
        return self._unary(self._stub.Conv, request, timeout)

    # -- service -----------------------------------------------------------

    def register_filter(self, filter: ArrayLike, *, dtype: DType = None,
                        timeout: Timeout = CLIENT_TIMEOUT) -> str:
        """Stores `filter` on the server; returns its id, usable wherever a filter
        (or pointwise filter, or bias) array is accepted. Use the same `dtype=`
        as the calls that will name it (e.g. "bfloat16")."""
        reply = self._unary(self._stub.RegisterFilter, register_request(filter, dtype), timeout)
        return str(reply.filter_id)

    def server_info(self, *, raw: bool = False, timeout: Timeout = CLIENT_TIMEOUT) -> Any:
        """The server's version, ops, dtypes, backends and limits.

        Returns a dict (proto field names; enums as their names, e.g.
        ``"DATA_TYPE_FLOAT32"``), or the ServerInfo proto with ``raw=True``.
        """
        info = self._unary(self._stub.GetServerInfo, pb.GetServerInfoRequest(), timeout)
        return info if raw else info_dict(info)

    def health(self, service: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", "UNKNOWN" or
        "SERVICE_UNKNOWN". `service` is "" (the server) or "convserve.v1.ConvService"."""
        method, request = self._health_call(service)
        return health_status(self._unary(method, request, timeout))

    # -- streaming ---------------------------------------------------------

    def stream(self, requests: Iterable[StreamItem], *, ordered: bool = True,
               return_exceptions: bool = False,
               timeout: Timeout = CLIENT_TIMEOUT) -> Iterator[StreamResult]:
        """Runs many ops on one ConvStream call; a generator of results.

        `requests` is an iterable of ``Request(op, *args, **kwargs)`` or tuples
        ``(op, args)``, ``(op, kwargs)``, ``(op, args, kwargs)`` with the
        arguments of the Client method `op` (no ``timeout``); for example
        ``("conv2d", (x, w, 1, "SAME"), {"activation": "relu"})``. All are
        encoded before the first is sent. `timeout` is the whole stream's
        deadline.

        With ``ordered=True`` (default) yields each result (a NumPy array) in
        request order; otherwise yields ``(index, result)`` as the server
        completes them. A request the server refused raises its
        ConvServeError when its turn comes (the stream is cancelled), or, with
        ``return_exceptions=True``, is yielded as the ConvServeError instance
        and the rest go on. A failure of the whole call raises ConvServeError.
        """
        results = StreamResults(requests, ordered, return_exceptions)
        for request in results.requests:
            self._with_options(request)
        return self._stream(results, self._timeout(timeout))

    def _stream(self, results: StreamResults, timeout: Optional[float]) -> Iterator[StreamResult]:
        if not results.requests:
            return
        call = self._stub.ConvStream(iter(results.requests), timeout=timeout)
        try:
            try:
                for reply in call:
                    for item in results.add(reply):
                        yield results.emit(item)
            except grpc.RpcError as error:
                raise rpc_error(error) from None
            results.finish()
        finally:
            call.cancel()  # no-op once the call has finished

