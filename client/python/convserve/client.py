"""convserve.Client: tf.nn's convolution ops, one gRPC call each.

Every op method has TensorFlow 2's name, positional arguments and defaults
(``name`` is accepted and ignored), takes NumPy arrays and returns a NumPy
array. Keyword-only extras on every op:

- ``bias=``: 1-D array (or registered filter id), length = output channels,
  added to the result (the server's fused epilogue);
- ``activation=``: ``"relu"``, ``"relu6"``, ``"elu"``, ``"leaky_relu"``
  (alpha 0.2), ``"sigmoid"``, ``"tanh"`` or ``None``, applied after the bias;
- ``dtype=``: ``None`` (send each array in its own dtype), ``"bfloat16"``
  (round float32 arrays to bfloat16 before sending; the result comes back as
  float32), or ``"float16"``/``"float32"``/``"float64"``/``"int32"`` (cast
  every array to that dtype first);
- ``timeout=``: deadline of this call in seconds (default: the client's).

This module holds the channel (plaintext or TLS, channel options), the unary
calls and streaming. Requests are built by ``convserve.request_builder``,
arrays are converted by ``convserve.tensors`` and errors are
``convserve.errors.ConvServeError``; the names this module has always offered
(``OPS``, ``ConvServeError``, ``Request``, ``build_request``, ``build_<op>``,
``decode_tensor``) are re-exported here unchanged.
"""

import os

import grpc

from convserve.errors import ConvServeError, rpc_error
from convserve.request_builder import (  # noqa: F401 - OPS, Request, build_request re-exported
    OPS,
    Request,
    as_request,
    build_atrous_conv2d,
    build_conv1d,
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
from convserve.v1 import convserve_pb2_grpc as pb_grpc

_DEFAULT = object()  # "use the client's timeout"


def _read_credential(value):
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    with open(os.fspath(value), "rb") as f:
        return f.read()


class Client:
    """A connection to a ConvServe server.

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
    """

    def __init__(self, address, *, max_message_mb=256, timeout=None, root_certificates=None,
                 private_key=None, certificate_chain=None, tls=None, options=None,
                 token=None, token_file=None):
        self.address = address
        self.timeout = timeout
        limit = int(max_message_mb * 1024 * 1024)
        channel_options = [("grpc.max_send_message_length", limit),
                           ("grpc.max_receive_message_length", limit)]
        channel_options += list(options or [])
        certs = (root_certificates, private_key, certificate_chain)
        if tls is None:
            tls = any(c is not None for c in certs)
        if token_file is not None:
            with open(token_file, "r", encoding="utf-8") as f:
                token = f.read().strip()
        if token and not tls:
            raise ValueError("a token needs TLS (root_certificates or tls=True): "
                             "it is never sent in plaintext")
        if tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_credential(root_certificates),
                private_key=_read_credential(private_key),
                certificate_chain=_read_credential(certificate_chain))
            if token:
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.access_token_call_credentials(token))
            self._channel = grpc.secure_channel(address, credentials, options=channel_options)
        else:
            self._channel = grpc.insecure_channel(address, options=channel_options)
        self._stub = pb_grpc.ConvServiceStub(self._channel)

    # -- plumbing ----------------------------------------------------------

    @property
    def channel(self):
        """The underlying grpc.Channel."""
        return self._channel

    @property
    def stub(self):
        """The generated ConvServiceStub, for raw proto calls."""
        return self._stub

    def close(self):
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _timeout(self, timeout):
        return self.timeout if timeout is _DEFAULT else timeout

    def _unary(self, method, request, timeout):
        try:
            return method(request, timeout=self._timeout(timeout))
        except grpc.RpcError as error:
            raise rpc_error(error) from None

    def call(self, request, *, timeout=_DEFAULT):
        """Sends one ConvRequest proto; returns the ConvResponse proto (with timing)."""
        return self._unary(self._stub.Conv, request, timeout)

    def _conv(self, request, timeout):
        return decode_tensor(self.call(request, timeout=timeout).output)

    # -- service -----------------------------------------------------------

    def register_filter(self, filter, *, dtype=None, timeout=_DEFAULT):
        """Stores `filter` on the server; returns its id, usable wherever a filter
        (or pointwise filter, or bias) array is accepted. Use the same `dtype=`
        as the calls that will name it (e.g. "bfloat16")."""
        request = pb.RegisterFilterRequest(filter=Encoder(dtype).tensor(filter, "filter"))
        return self._unary(self._stub.RegisterFilter, request, timeout).filter_id

    def server_info(self, *, raw=False, timeout=_DEFAULT):
        """The server's version, ops, dtypes, backends and limits.

        Returns a dict (proto field names; enums as their names, e.g.
        ``"DATA_TYPE_FLOAT32"``), or the ServerInfo proto with ``raw=True``.
        """
        info = self._unary(self._stub.GetServerInfo, pb.GetServerInfoRequest(), timeout)
        return info if raw else _to_dict(info)

    def health(self, service="", *, timeout=_DEFAULT):
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", "UNKNOWN" or
        "SERVICE_UNKNOWN". `service` is "" (the server) or "convserve.v1.ConvService"."""
        health_pb2, health_pb2_grpc = _health_modules()
        stub = health_pb2_grpc.HealthStub(self._channel)
        reply = self._unary(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    # -- ops (tf.nn names, argument order and defaults) --------------------

    def convolution(self, input, filters, strides=None, padding="VALID", data_format=None,
                    dilations=None, name=None, *, bias=None, activation=None, dtype=None,
                    timeout=_DEFAULT):
        """tf.nn.convolution: N-D convolution, N = rank(filters) - 2."""
        return self._conv(build_convolution(input, filters, strides, padding, data_format,
                                            dilations, bias=bias, activation=activation,
                                            dtype=dtype), timeout)

    def conv1d(self, input, filters, stride, padding, data_format="NWC", dilations=None,
               name=None, *, bias=None, activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.conv1d."""
        return self._conv(build_conv1d(input, filters, stride, padding, data_format, dilations,
                                       bias=bias, activation=activation, dtype=dtype), timeout)

    def conv2d(self, input, filters, strides, padding, data_format="NHWC", dilations=None,
               name=None, *, bias=None, activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.conv2d; padding is "SAME", "VALID" or 4 (before, after) pairs."""
        return self._conv(build_conv2d(input, filters, strides, padding, data_format, dilations,
                                       bias=bias, activation=activation, dtype=dtype), timeout)

    def conv3d(self, input, filters, strides, padding, data_format="NDHWC", dilations=None,
               name=None, *, bias=None, activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.conv3d."""
        return self._conv(build_conv3d(input, filters, strides, padding, data_format, dilations,
                                       bias=bias, activation=activation, dtype=dtype), timeout)

    def depthwise_conv2d(self, input, filter, strides, padding, data_format=None, dilations=None,
                         name=None, *, bias=None, activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.depthwise_conv2d."""
        return self._conv(build_depthwise_conv2d(input, filter, strides, padding, data_format,
                                                 dilations, bias=bias, activation=activation,
                                                 dtype=dtype), timeout)

    def separable_conv2d(self, input, depthwise_filter, pointwise_filter, strides, padding,
                         data_format=None, dilations=None, name=None, *, bias=None,
                         activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.separable_conv2d."""
        return self._conv(build_separable_conv2d(input, depthwise_filter, pointwise_filter,
                                                 strides, padding, data_format, dilations,
                                                 bias=bias, activation=activation, dtype=dtype),
                          timeout)

    def atrous_conv2d(self, value, filters, rate, padding, name=None, *, bias=None,
                      activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.atrous_conv2d."""
        return self._conv(build_atrous_conv2d(value, filters, rate, padding, bias=bias,
                                              activation=activation, dtype=dtype), timeout)

    def conv2d_transpose(self, input, filters, output_shape, strides, padding="SAME",
                         data_format="NHWC", dilations=None, name=None, *, bias=None,
                         activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.conv2d_transpose."""
        return self._conv(build_conv2d_transpose(input, filters, output_shape, strides, padding,
                                                 data_format, dilations, bias=bias,
                                                 activation=activation, dtype=dtype), timeout)

    def conv3d_transpose(self, input, filters, output_shape, strides, padding="SAME",
                         data_format="NDHWC", dilations=None, name=None, *, bias=None,
                         activation=None, dtype=None, timeout=_DEFAULT):
        """tf.nn.conv3d_transpose."""
        return self._conv(build_conv3d_transpose(input, filters, output_shape, strides, padding,
                                                 data_format, dilations, bias=bias,
                                                 activation=activation, dtype=dtype), timeout)

    def conv_transpose(self, input, filters, output_shape, strides, padding="SAME",
                       data_format=None, dilations=None, name=None, *, bias=None, activation=None,
                       dtype=None, timeout=_DEFAULT):
        """tf.nn.conv_transpose: 1-, 2- or 3-D by len(output_shape)."""
        return self._conv(build_conv_transpose(input, filters, output_shape, strides, padding,
                                               data_format, dilations, bias=bias,
                                               activation=activation, dtype=dtype), timeout)

    # -- streaming ---------------------------------------------------------

    def stream(self, requests, *, ordered=True, return_exceptions=False, timeout=_DEFAULT):
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
        prepared = []
        for index, item in enumerate(requests):
            request = pb.ConvRequest()
            request.CopyFrom(as_request(item))
            request.id = str(index)
            prepared.append(request)
        return self._stream(prepared, ordered, return_exceptions, self._timeout(timeout))

    def _stream(self, prepared, ordered, return_exceptions, timeout):
        if not prepared:
            return
        call = self._stub.ConvStream(iter(prepared), timeout=timeout)
        pending = {}
        next_index = 0
        received = 0
        try:
            try:
                for reply in call:
                    try:
                        index = int(reply.id)
                    except ValueError:
                        raise ConvServeError(grpc.StatusCode.INTERNAL,
                                             f"reply with unknown id {reply.id!r}") from None
                    if reply.HasField("error"):
                        result = ConvServeError(reply.error.code, reply.error.message)
                    else:
                        result = decode_tensor(reply.output)
                    received += 1
                    if not ordered:
                        if isinstance(result, ConvServeError) and not return_exceptions:
                            raise result
                        yield index, result
                        continue
                    pending[index] = result
                    while next_index in pending:
                        result = pending.pop(next_index)
                        next_index += 1
                        if isinstance(result, ConvServeError) and not return_exceptions:
                            raise result
                        yield result
            except grpc.RpcError as error:
                raise rpc_error(error) from None
            if received < len(prepared):
                raise ConvServeError(grpc.StatusCode.INTERNAL,
                                     f"stream ended after {received} of {len(prepared)} replies")
        finally:
            call.cancel()  # no-op once the call has finished


def _to_dict(message):
    """A proto message as a plain dict: every field, enums by name, ints as ints."""
    result = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)

        def convert(v, field=field):
            if field.type == field.TYPE_MESSAGE:
                return _to_dict(v)
            if field.type == field.TYPE_ENUM:
                return field.enum_type.values_by_number[v].name if v in \
                    field.enum_type.values_by_number else v
            return v

        if field.label == field.LABEL_REPEATED:
            result[field.name] = [convert(v) for v in value]
        else:
            result[field.name] = convert(value)
    return result


def _health_modules():
    # grpcio-health-checking's modules define the same messages; use them when
    # present so the two never clash in the protobuf descriptor pool.
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:
        from convserve.health.v1 import health_pb2, health_pb2_grpc
    return health_pb2, health_pb2_grpc
