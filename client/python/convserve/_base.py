"""What ``convserve.Client`` and ``convserve.aio.Client`` share.

Contract: ``ClientBase`` holds the channel set-up (plaintext or TLS, a bearer
token, channel options), the default timeout and the eleven ``tf.nn`` op methods
with their signatures and documentation. An op method builds its request with
``convserve.request_builder`` and hands it to the subclass's ``_run``, which
sends it and decodes the reply: ``Client._run`` returns the array,
``aio.Client._run`` is a coroutine (so the async op methods return awaitables
and build nothing until awaited). The helpers below build the other calls'
requests and decode their replies (``register_request``, ``info_dict``,
``health_status``) and put a ``ConvStream``'s replies in order
(``StreamResults``); the subclasses only make the calls.
"""

from __future__ import annotations

import os
from typing import (Any, Callable, Dict, Generic, Iterable, List, Optional, Sequence, Tuple,
                    TypeVar, Union)

import grpc

from convserve._typing import (CLIENT_TIMEOUT, Activation, Array, ArrayLike, DType, FilterLike,
                               Ints, Padding, Timeout)
from convserve.errors import ConvServeError
from convserve.request_builder import (
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
    build_separable_conv2d,
)
from convserve.tensors import Encoder, decode_tensor
from convserve.v1 import convserve_pb2 as pb
from convserve.v1 import convserve_pb2_grpc as pb_grpc

#: An op method's result: the array (Client) or a coroutine returning it (aio.Client).
R = TypeVar("R")
#: PEM bytes, or the path of a PEM file.
Credential = Union[bytes, str, "os.PathLike[str]", None]
#: A result of Client.stream: the array, a refused request's error (with
#: return_exceptions=True), or (index, either) with ordered=False.
StreamResult = Union[Array, ConvServeError, Tuple[int, Union[Array, ConvServeError]]]


def _read_credential(value: Credential) -> Optional[bytes]:
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    with open(os.fspath(value), "rb") as f:
        return f.read()


class ClientBase(Generic[R]):
    """What ``convserve.Client`` and ``convserve.aio.Client`` share: the
    constructor (its arguments are documented on ``convserve.Client``) and the
    eleven ``tf.nn`` op methods, whose keyword-only extras (``bias=``,
    ``activation=``, ``dtype=``, ``timeout=``) are documented there too.
    """

    # grpc.secure_channel / grpc.insecure_channel, or their grpc.aio versions.
    _secure_channel: Callable[..., Any]
    _insecure_channel: Callable[..., Any]

    address: str
    timeout: Optional[float]
    allow_reduced_precision: bool
    backend: Optional[str]

    def __init__(self, address: str, *, max_message_mb: float = 256,
                 timeout: Optional[float] = None, root_certificates: Credential = None,
                 private_key: Credential = None, certificate_chain: Credential = None,
                 tls: Optional[bool] = None, options: Optional[Sequence[Tuple[str, Any]]] = None,
                 token: Optional[str] = None,
                 token_file: Union[str, "os.PathLike[str]", None] = None,
                 allow_reduced_precision: bool = False, backend: Optional[str] = None) -> None:
        self.address = address
        self.timeout = timeout
        self.allow_reduced_precision = allow_reduced_precision
        self.backend = backend
        limit = int(max_message_mb * 1024 * 1024)
        channel_options: List[Tuple[str, Any]] = [("grpc.max_send_message_length", limit),
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
            self._channel = self._secure_channel(address, credentials, options=channel_options)
        else:
            self._channel = self._insecure_channel(address, options=channel_options)
        self._stub = pb_grpc.ConvServiceStub(self._channel)

    @property
    def stub(self) -> Any:
        """The generated ConvServiceStub, for raw proto calls."""
        return self._stub

    def _timeout(self, timeout: Timeout) -> Optional[float]:
        return self.timeout if timeout is CLIENT_TIMEOUT else timeout

    def _with_options(self, request: pb.ConvRequest) -> pb.ConvRequest:
        """`request` with this client's allow_reduced_precision and backend."""
        request.allow_reduced_precision = self.allow_reduced_precision
        if self.backend:
            request.backend = self.backend
        return request

    def _run(self, build: Callable[[], pb.ConvRequest], timeout: Timeout) -> R:
        """Sends the request `build` returns; the decoded output array."""
        raise NotImplementedError

    def _health_call(self, service: str) -> Tuple[Callable[..., Any], Any]:
        """The Health.Check method on this channel and its request."""
        health_pb2, health_pb2_grpc = _health_modules()
        stub = health_pb2_grpc.HealthStub(self._channel)
        return stub.Check, health_pb2.HealthCheckRequest(service=service)

    # -- ops (tf.nn names, argument order and defaults) --------------------

    def convolution(self, input: ArrayLike, filters: FilterLike, strides: Optional[Ints] = None,
                    padding: Padding = "VALID", data_format: Optional[str] = None,
                    dilations: Optional[Ints] = None, name: Optional[str] = None, *,
                    bias: Optional[FilterLike] = None, activation: Activation = None,
                    dtype: DType = None, timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """Computes sums of N-D convolutions (cross-correlation); as ``tf.nn.convolution``.

        N = rank(filters) - 2, 1 <= N <= 3. If `data_format` does not start
        with "NC", given a rank (N+2) `input` of shape
        ``[batch] + input_spatial_shape + [in_channels]`` and a rank (N+2)
        `filters` of shape ``spatial_filter_shape + [in_channels, out_channels]``,
        this computes for each N-D spatial output position
        ``(x[0], ..., x[N-1])``::

            output[b, x[0], ..., x[N-1], k] =
                sum_{z[0], ..., z[N-1], q}
                    filter[z[0], ..., z[N-1], q, k] *
                    padded_input[b,
                                 x[0] * strides[0] + dilation_rate[0] * z[0],
                                 ...,
                                 x[N-1] * strides[N-1] + dilation_rate[N-1] * z[N-1],
                                 q]

        where `padded_input` is obtained by zero padding the input using an
        effective spatial filter shape of
        ``(spatial_filter_shape - 1) * dilation_rate + 1`` and output striding
        `strides`. If `data_format` starts with "NC", the `input` and output
        (but not the `filters`) are transposed to and from channels last.

        If padding == "SAME"::

            output_spatial_shape[i] = ceil(input_spatial_shape[i] / strides[i])

        If padding == "VALID"::

            output_spatial_shape[i] = ceil((input_spatial_shape[i] -
                (spatial_filter_shape[i] - 1) * dilation_rate[i]) / strides[i])

        Args:
            input: An (N+2)-D array of shape ``[batch_size] + input_spatial_shape +
                [in_channels]`` if `data_format` does not start with "NC" (default),
                or ``[batch_size, in_channels] + input_spatial_shape`` if it does.
            filters: An (N+2)-D array with the same type as `input` and shape
                ``spatial_filter_shape + [in_channels, out_channels]``, or a
                registered filter id.
            strides: Optional. Sequence of N ints >= 1 (or an int). Specifies the
                output stride. Defaults to ``[1] * N``. If any value of strides
                is > 1, then all values of dilations must be 1.
            padding: A string, either ``"VALID"`` or ``"SAME"``: the padding
                algorithm; or explicit ``(before, after)`` pairs for each of the
                N+2 dimensions in `data_format` order.
            data_format: A string or None. Whether the channel dimension of the
                `input` and output is the last dimension (default, or if
                `data_format` does not start with "NC"), or the second dimension
                (if it does). For N=1, the valid values are "NWC" (default) and
                "NCW". For N=2, "NHWC" (default) and "NCHW". For N=3, "NDHWC"
                (default) and "NCDHW".
            dilations: Optional. Sequence of N ints >= 1 (or an int). Specifies
                the filter upsampling/input downsampling rate. In the
                literature, the same parameter is sometimes called
                ``input stride`` or ``dilation``. The effective filter size is
                ``spatial_filter_shape + (spatial_filter_shape - 1) * (rate - 1)``,
                obtained by inserting ``dilations[i] - 1`` zeros between
                consecutive elements of the original filter in each spatial
                dimension i. If any value of dilations is > 1, then all values
                of strides must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array with the same type as `input` (float32 for
            ``dtype="bfloat16"``) of shape
            ``[batch_size] + output_spatial_shape + [out_channels]`` if
            `data_format` is None or does not start with "NC", or
            ``[batch_size, out_channels] + output_spatial_shape`` if it does.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_convolution(
            input, filters, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def conv1d(self, input: ArrayLike, filters: FilterLike, stride: Ints, padding: Padding,
               data_format: Optional[str] = "NWC", dilations: Optional[Ints] = None,
               name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
               activation: Activation = None, dtype: DType = None,
               timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """Computes a 1-D convolution given 3-D `input` and `filters`; as ``tf.nn.conv1d``.

        Given an input tensor of shape ``[batch, in_width, in_channels]`` if
        `data_format` is "NWC", or ``[batch, in_channels, in_width]`` if
        `data_format` is "NCW", and a filter / kernel tensor of shape
        ``[filter_width, in_channels, out_channels]``, this op reshapes the
        arguments to pass them to conv2d to perform the equivalent
        convolution operation: ``[batch, in_width, in_channels]`` becomes
        ``[batch, 1, in_width, in_channels]``, the filter
        ``[1, filter_width, in_channels, out_channels]``, and the result is
        reshaped back to ``[batch, out_width, out_channels]`` (where out_width
        is a function of the stride and padding as in conv2d).

        Args:
            input: A 3-D array of type float16, float32, float64 or int32
                (or bfloat16 through ``dtype="bfloat16"``).
            filters: A 3-D array with the same type as `input`, or a
                registered filter id.
            stride: An int or list of ints that has length 1 or 3. The number
                of entries by which the filter is moved right at each step.
            padding: 'SAME' or 'VALID'.
            data_format: An optional string from "NWC", "NCW". Defaults to
                "NWC", the data is stored in the order of
                ``[batch, in_width, in_channels]``. The "NCW" format stores data
                as ``[batch, in_channels, in_width]``.
            dilations: An int or list of ints that has length 1 or 3 which
                defaults to 1. The dilation factor for each dimension of input.
                If set to k > 1, there will be k-1 skipped cells between each
                filter element on that dimension. Dilations in the batch and
                depth dimensions must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array. Has the same type as input (float32 for
            ``dtype="bfloat16"``).

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_conv1d(
            input, filters, stride, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def conv2d(self, input: ArrayLike, filters: FilterLike, strides: Ints, padding: Padding,
               data_format: Optional[str] = "NHWC", dilations: Optional[Ints] = None,
               name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
               activation: Activation = None, dtype: DType = None,
               timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """Computes a 2-D convolution given 4-D `input` and `filters`; as ``tf.nn.conv2d``.

        Given an input tensor of shape ``[batch, in_height, in_width, in_channels]``
        and a filter / kernel tensor of shape
        ``[filter_height, filter_width, in_channels, out_channels]``, this op
        performs the following:

        1. Flattens the filter to a 2-D matrix with shape
           ``[filter_height * filter_width * in_channels, output_channels]``.
        2. Extracts image patches from the input tensor to form a *virtual*
           tensor of shape
           ``[batch, out_height, out_width, filter_height * filter_width * in_channels]``.
        3. For each patch, right-multiplies the filter matrix and the image
           patch vector.

        In detail, with the default NHWC format::

            output[b, i, j, k] =
                sum_{di, dj, q} input[b, strides[1] * i + di, strides[2] * j + dj, q] *
                                filter[di, dj, q, k]

        Must have ``strides[0] = strides[3] = 1``. For the most common case of
        the same horizontal and vertical strides, ``strides = [1, stride, stride, 1]``.

        Args:
            input: A 4-D array. Must be one of the following types: float16,
                float32, float64, int32 (or bfloat16 through ``dtype="bfloat16"``).
                The dimension order is interpreted according to the value of
                `data_format`.
            filters: A 4-D array. Must have the same type as `input`. Shape
                ``[filter_height, filter_width, in_channels, out_channels]``
                (``in_channels`` may divide the input's depth: grouped
                convolution). Or a registered filter id.
            strides: An int or list of ints that has length 1, 2 or 4. The
                stride of the sliding window for each dimension of `input`. If
                a single value is given it is replicated in the H and W
                dimension. By default the N and C dimensions are set to 1. The
                dimension order is determined by the value of `data_format`.
            padding: Either the string "SAME" or "VALID" indicating the type of
                padding algorithm to use, or a list indicating the explicit
                paddings at the start and end of each dimension. When explicit
                padding is used and data_format is "NHWC", this should be in the
                form ``[[0, 0], [pad_top, pad_bottom], [pad_left, pad_right], [0, 0]]``.
                When explicit padding used and data_format is "NCHW", this
                should be in the form
                ``[[0, 0], [0, 0], [pad_top, pad_bottom], [pad_left, pad_right]]``.
            data_format: An optional string from: "NHWC", "NCHW". Defaults to
                "NHWC". Specify the data format of the input and output data.
                With the default format "NHWC", the data is stored in the order
                of: ``[batch, height, width, channels]``. Alternatively, the
                format could be "NCHW", the data storage order of:
                ``[batch, channels, height, width]``.
            dilations: An int or list of ints that has length 1, 2 or 4,
                defaults to 1. The dilation factor for each dimension of
                `input`. If a single value is given it is replicated in the H
                and W dimension. By default the N and C dimensions are set to 1.
                If set to k > 1, there will be k-1 skipped cells between each
                filter element on that dimension. The dimension order is
                determined by the value of `data_format`. Dilations in the batch
                and depth dimensions must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array. Has the same type as `input` (float32 for
            ``dtype="bfloat16"``) and the same outer batch shape.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_conv2d(
            input, filters, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def conv3d(self, input: ArrayLike, filters: FilterLike, strides: Ints, padding: Padding,
               data_format: Optional[str] = "NDHWC", dilations: Optional[Ints] = None,
               name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
               activation: Activation = None, dtype: DType = None,
               timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """Computes a 3-D convolution given 5-D `input` and `filters`; as ``tf.nn.conv3d``.

        In signal processing, cross-correlation is a measure of similarity of
        two waveforms as a function of a time-lag applied to one of them. This
        is also known as a sliding dot product or sliding inner-product. Our
        Conv3D implements a form of cross-correlation.

        Args:
            input: A 5-D array. Must be one of the following types: float16,
                float32, float64, int32 (or bfloat16 through ``dtype="bfloat16"``).
                Shape ``[batch, in_depth, in_height, in_width, in_channels]``.
            filters: A 5-D array. Must have the same type as `input`. Shape
                ``[filter_depth, filter_height, filter_width, in_channels,
                out_channels]``. `in_channels` must match between `input` and
                `filters`. Or a registered filter id.
            strides: An int or list of ints that has length 1, 3 or 5. 1-D
                tensor of length 5. The stride of the sliding window for each
                dimension of `input`. Must have ``strides[0] = strides[4] = 1``.
            padding: A string from: "SAME", "VALID". The type of padding
                algorithm to use.
            data_format: An optional string from: "NDHWC", "NCDHW". Defaults to
                "NDHWC". The data format of the input and output data. With the
                default format "NDHWC", the data is stored in the order of:
                ``[batch, in_depth, in_height, in_width, in_channels]``.
                Alternatively, the format could be "NCDHW", the data storage
                order is: ``[batch, in_channels, in_depth, in_height, in_width]``.
            dilations: An int or list of ints that has length 1, 3 or 5,
                defaults to 1. The dilation factor for each dimension of
                `input`. If set to k > 1, there will be k-1 skipped cells
                between each filter element on that dimension. The dimension
                order is determined by the value of `data_format`. Dilations in
                the batch and depth dimensions must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array. Has the same type as `input` (float32 for
            ``dtype="bfloat16"``).

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_conv3d(
            input, filters, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def depthwise_conv2d(self, input: ArrayLike, filter: FilterLike, strides: Ints,
                         padding: Padding, data_format: Optional[str] = None,
                         dilations: Optional[Ints] = None, name: Optional[str] = None, *,
                         bias: Optional[FilterLike] = None, activation: Activation = None,
                         dtype: DType = None, timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """Depthwise 2-D convolution; as ``tf.nn.depthwise_conv2d``.

        Given a 4-D input tensor ('NHWC' or 'NCHW' data formats) and a filter
        tensor of shape ``[filter_height, filter_width, in_channels,
        channel_multiplier]`` containing `in_channels` convolutional filters of
        depth 1, depthwise_conv2d applies a different filter to each input
        channel (expanding from 1 channel to `channel_multiplier` channels for
        each), then concatenates the results together. The output has
        ``in_channels * channel_multiplier`` channels.

        In detail, with the default NHWC format::

            output[b, i, j, k * channel_multiplier + q] =
                sum_{di, dj} filter[di, dj, k, q] *
                             input[b, strides[1] * i + rate[0] * di,
                                      strides[2] * j + rate[1] * dj, k]

        Must have ``strides[0] = strides[3] = 1``. For the most common case of
        the same horizontal and vertical strides, ``strides = [1, stride, stride, 1]``.
        If any value in `dilations` is greater than 1, we perform atrous
        depthwise convolution, in which case all values in the `strides`
        tensor must be equal to 1.

        Args:
            input: 4-D with shape according to `data_format`.
            filter: 4-D with shape ``[filter_height, filter_width, in_channels,
                channel_multiplier]``, or a registered filter id.
            strides: 1-D of size 4 (or 1 or 2: the H and W strides). The stride
                of the sliding window for each dimension of `input`.
            padding: Controls how to pad the image before applying the
                convolution. Can be the string "SAME" or "VALID" indicating the
                type of padding algorithm to use, or a list indicating the
                explicit paddings at the start and end of each dimension. When
                explicit padding is used and data_format is "NHWC", this should
                be in the form
                ``[[0, 0], [pad_top, pad_bottom], [pad_left, pad_right], [0, 0]]``.
                When explicit padding used and data_format is "NCHW", this
                should be in the form
                ``[[0, 0], [0, 0], [pad_top, pad_bottom], [pad_left, pad_right]]``.
            data_format: The data format for input. Either "NHWC" (default) or
                "NCHW".
            dilations: 1-D of size 2 (or an int). The dilation rate in which we
                sample input values across the height and width dimensions in
                atrous convolution. If it is greater than 1, then all values of
                strides must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            A 4-D array with shape according to `data_format`. E.g., for "NHWC"
            format, shape is
            ``[batch, out_height, out_width, in_channels * channel_multiplier]``.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_depthwise_conv2d(
            input, filter, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def separable_conv2d(self, input: ArrayLike, depthwise_filter: FilterLike,
                         pointwise_filter: FilterLike, strides: Ints, padding: Padding,
                         data_format: Optional[str] = None, dilations: Optional[Ints] = None,
                         name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                         activation: Activation = None, dtype: DType = None,
                         timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """2-D convolution with separable filters; as ``tf.nn.separable_conv2d``.

        Performs a depthwise convolution that acts separately on channels
        followed by a pointwise convolution that mixes channels. Note that this
        is separability between dimensions ``[1, 2]`` and ``3``, not spatial
        separability between dimensions ``1`` and ``2``.

        In detail, with the default NHWC format::

            output[b, i, j, k] = sum_{di, dj, q, r}
                input[b, strides[1] * i + di, strides[2] * j + dj, q] *
                depthwise_filter[di, dj, q, r] *
                pointwise_filter[0, 0, q * channel_multiplier + r, k]

        `strides` controls the strides for the depthwise convolution only,
        since the pointwise convolution has implicit strides of
        ``[1, 1, 1, 1]``. Must have ``strides[0] = strides[3] = 1``. For the
        most common case of the same horizontal and vertical strides,
        ``strides = [1, stride, stride, 1]``. If any value in `dilations` is
        greater than 1, we perform atrous depthwise convolution, in which case
        all values in the `strides` tensor must be equal to 1.

        Args:
            input: 4-D array with shape according to `data_format`.
            depthwise_filter: 4-D array with shape ``[filter_height,
                filter_width, in_channels, channel_multiplier]``. Contains
                `in_channels` convolutional filters of depth 1. Or a registered
                filter id.
            pointwise_filter: 4-D array with shape
                ``[1, 1, channel_multiplier * in_channels, out_channels]``.
                Pointwise filter to mix channels after `depthwise_filter` has
                convolved spatially. Or a registered filter id.
            strides: 1-D of size 4 (or 1 or 2: the H and W strides). The
                strides for the depthwise convolution for each dimension of
                `input`.
            padding: A string, either 'VALID' or 'SAME'. The padding algorithm.
            data_format: The data format for input. Either "NHWC" (default) or
                "NCHW".
            dilations: 1-D of size 2 (or an int). The dilation rate in which we
                sample input values across the height and width dimensions in
                atrous convolution. If it is greater than 1, then all values of
                strides must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            A 4-D array with shape according to `data_format`. For example,
            with data_format="NHWC", shape is
            ``[batch, out_height, out_width, out_channels]``.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_separable_conv2d(
            input, depthwise_filter, pointwise_filter, strides, padding, data_format, dilations,
            bias=bias, activation=activation, dtype=dtype), timeout)

    def atrous_conv2d(self, value: ArrayLike, filters: FilterLike, rate: int, padding: Padding,
                      name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                      activation: Activation = None, dtype: DType = None,
                      timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """Atrous convolution (convolution with holes); as ``tf.nn.atrous_conv2d``.

        Computes a 2-D atrous convolution, also known as convolution with holes
        or dilated convolution, given 4-D `value` and `filters` tensors. If the
        `rate` parameter is equal to one, it performs regular 2-D convolution.
        If the `rate` parameter is greater than one, it performs convolution
        with holes, sampling the input values every `rate` pixels in the
        `height` and `width` dimensions. This is equivalent to convolving the
        input with a set of upsampled filters, produced by inserting
        ``rate - 1`` zeros between two consecutive values of the filters along
        the `height` and `width` dimensions, hence the name atrous convolution
        or convolution with holes (the French word trous means holes in
        English).

        More specifically::

            output[b, i, j, k] = sum_{di, dj, q} filters[di, dj, q, k] *
                                                 value[b, i + rate * di, j + rate * dj, q]

        Args:
            value: A 4-D array of type float. It needs to be in the default
                "NHWC" format. Its shape is
                ``[batch, in_height, in_width, in_channels]``.
            filters: A 4-D array with the same type as `value` and shape
                ``[filter_height, filter_width, in_channels, out_channels]``.
                `filters`' `in_channels` dimension must match that of `value`.
                Atrous convolution is equivalent to standard convolution with
                upsampled filters with effective height
                ``filter_height + (filter_height - 1) * (rate - 1)`` and
                effective width ``filter_width + (filter_width - 1) * (rate - 1)``,
                produced by inserting ``rate - 1`` zeros along consecutive
                elements across the `filters`' spatial dimensions. Or a
                registered filter id.
            rate: A positive int32. The stride with which we sample input
                values across the `height` and `width` dimensions. Equivalently,
                the rate by which we upsample the filter values by inserting
                zeros across the `height` and `width` dimensions. In the
                literature, the same parameter is sometimes called
                ``input stride`` or ``dilation``.
            padding: A string, either 'VALID' or 'SAME'. The padding algorithm.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array with the same type as `value` (float32 for
            ``dtype="bfloat16"``). Output shape with 'VALID' padding is
            ``[batch, height - rate * (filter_height - 1), width - rate *
            (filter_width - 1), out_channels]``; with 'SAME' padding it is
            ``[batch, height, width, out_channels]``.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_atrous_conv2d(
            value, filters, rate, padding, bias=bias, activation=activation, dtype=dtype),
            timeout)

    def conv1d_transpose(self, input: ArrayLike, filters: FilterLike, output_shape: Ints,
                         strides: Ints, padding: Padding = "SAME",
                         data_format: Optional[str] = "NWC", dilations: Optional[Ints] = None,
                         name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                         activation: Activation = None, dtype: DType = None,
                         timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """The transpose of `conv1d`; as ``tf.nn.conv1d_transpose``.

        This operation is sometimes called "deconvolution" after
        Deconvolutional Networks, but is actually the transpose (gradient) of
        `conv1d` rather than an actual deconvolution.

        Args:
            input: A 3-D array of type float and shape
                ``[batch, in_width, in_channels]`` for `NWC` data format or
                ``[batch, in_channels, in_width]`` for `NCW` data format.
            filters: A 3-D array with the same type as `input` and shape
                ``[filter_width, output_channels, in_channels]``. `filter`'s
                `in_channels` dimension must match that of `input`. Or a
                registered filter id.
            output_shape: A 1-D array, containing three elements, representing
                the output shape of the deconvolution op. (As in TensorFlow, a
                width-only ``[W]`` is read as height W, width 1 once the dummy
                height is inserted, and fits only W = 1.)
            strides: An int or list of ints that has length 1 or 3. The number
                of entries by which the filter is moved right at each step.
            padding: A string, either 'VALID' or 'SAME'. The padding algorithm.
            data_format: A string. 'NWC' and 'NCW' are supported.
            dilations: An int or list of ints that has length 1 or 3 which
                defaults to 1. The dilation factor for each dimension of input.
                If set to k > 1, there will be k-1 skipped cells between each
                filter element on that dimension. Dilations in the batch and
                depth dimensions must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array with the same type as `input` (float32 for
            ``dtype="bfloat16"``) and shape `output_shape`.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message, as when `output_shape` is not a
                3-element vector that fits the input) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent,
                e.g. a `padding` other than 'VALID' or 'SAME'.
        """
        return self._run(lambda: build_conv1d_transpose(
            input, filters, output_shape, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def conv2d_transpose(self, input: ArrayLike, filters: FilterLike, output_shape: Ints,
                         strides: Ints, padding: Padding = "SAME",
                         data_format: Optional[str] = "NHWC", dilations: Optional[Ints] = None,
                         name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                         activation: Activation = None, dtype: DType = None,
                         timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """The transpose of `conv2d`; as ``tf.nn.conv2d_transpose``.

        This operation is sometimes called "deconvolution" after
        Deconvolutional Networks, but is really the transpose (gradient) of
        `conv2d` rather than an actual deconvolution.

        Args:
            input: A 4-D array of type float and shape
                ``[batch, height, width, in_channels]`` for "NHWC" data format
                or ``[batch, in_channels, height, width]`` for "NCHW" data
                format.
            filters: A 4-D array with the same type as `input` and shape
                ``[height, width, output_channels, in_channels]``. `filters`'
                `in_channels` dimension must match that of `input`. Or a
                registered filter id.
            output_shape: A 1-D array representing the output shape of the
                deconvolution op: 4 values in `data_format` order, or the 2
                spatial ones ``[height, width]`` (the batch is then `input`'s
                and the channels `filters`' ``output_channels``).
            strides: An int or list of ints that has length 1, 2 or 4. The
                stride of the sliding window for each dimension of `input`. If
                a single value is given it is replicated in the H and W
                dimension. By default the N and C dimensions are set to 1. The
                dimension order is determined by the value of `data_format`.
            padding: Either the string "SAME" or "VALID" indicating the type
                of padding algorithm to use, or a list indicating the explicit
                paddings at the start and end of each dimension. When explicit
                padding is used and data_format is "NHWC", this should be in
                the form ``[[0, 0], [pad_top, pad_bottom], [pad_left,
                pad_right], [0, 0]]``. When explicit padding used and
                data_format is "NCHW", this should be in the form ``[[0, 0],
                [0, 0], [pad_top, pad_bottom], [pad_left, pad_right]]``.
            data_format: A string. 'NHWC' and 'NCHW' are supported.
            dilations: An int or list of ints that has length 1, 2 or 4,
                defaults to 1. The dilation factor for each dimension of
                `input`. If a single value is given it is replicated in the H
                and W dimension. By default the N and C dimensions are set to 1.
                If set to k > 1, there will be k-1 skipped cells between each
                filter element on that dimension. The dimension order is
                determined by the value of `data_format`. Dilations in the batch
                and depth dimensions must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array with the same type as `input` (float32 for
            ``dtype="bfloat16"``) and shape `output_shape`.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message, as when `output_shape` does not fit
                the input) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_conv2d_transpose(
            input, filters, output_shape, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def conv3d_transpose(self, input: ArrayLike, filters: FilterLike, output_shape: Ints,
                         strides: Ints, padding: Padding = "SAME",
                         data_format: Optional[str] = "NDHWC", dilations: Optional[Ints] = None,
                         name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                         activation: Activation = None, dtype: DType = None,
                         timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """The transpose of `conv3d`; as ``tf.nn.conv3d_transpose``.

        This operation is sometimes called "deconvolution" after
        Deconvolutional Networks, but is really the transpose (gradient) of
        `conv3d` rather than an actual deconvolution.

        Args:
            input: A 5-D array of type float and shape
                ``[batch, depth, height, width, in_channels]`` for "NDHWC" data
                format or ``[batch, in_channels, depth, height, width]`` for
                "NCDHW".
            filters: A 5-D array with the same type as `input` and shape
                ``[depth, height, width, output_channels, in_channels]``.
                `filters`' `in_channels` dimension must match that of `input`.
                Or a registered filter id.
            output_shape: A 1-D array representing the output shape of the
                deconvolution op.
            strides: An int or list of ints that has length 1, 3 or 5. The
                stride of the sliding window for each dimension of `input`. If
                a single value is given it is replicated in the D, H and W
                dimension. By default the N and C dimensions are set to 1. The
                dimension order is determined by the value of `data_format`.
            padding: A string, either 'VALID' or 'SAME'. The padding algorithm.
            data_format: A string. 'NDHWC' and 'NCDHW' are supported.
            dilations: An int or list of ints that has length 1, 3 or 5,
                defaults to 1. The dilation factor for each dimension of
                `input`. If a single value is given it is replicated in the D,
                H and W dimension. By default the N and C dimensions are set to
                1. If set to k > 1, there will be k-1 skipped cells between each
                filter element on that dimension. The dimension order is
                determined by the value of `data_format`. Dilations in the batch
                and depth dimensions must be 1.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array with the same type as `input` (float32 for
            ``dtype="bfloat16"``) and shape `output_shape`.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_conv3d_transpose(
            input, filters, output_shape, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)

    def conv_transpose(self, input: ArrayLike, filters: FilterLike, output_shape: Ints,
                       strides: Ints, padding: Padding = "SAME", data_format: Optional[str] = None,
                       dilations: Optional[Ints] = None, name: Optional[str] = None, *,
                       bias: Optional[FilterLike] = None, activation: Activation = None,
                       dtype: DType = None, timeout: Timeout = CLIENT_TIMEOUT) -> R:
        """The transpose of `convolution`; as ``tf.nn.conv_transpose``.

        This operation is sometimes called "deconvolution" after
        Deconvolutional Networks, but is actually the transpose (gradient) of
        `convolution` rather than an actual deconvolution. It is 1-, 2- or
        3-D by ``len(output_shape) - 2``.

        Args:
            input: An N+2 dimensional array of shape
                ``[batch_size] + input_spatial_shape + [in_channels]`` if
                data_format does not start with "NC" (default), or
                ``[batch_size, in_channels] + input_spatial_shape`` if
                data_format starts with "NC". It must be one of the following
                types: half, bfloat16 (``dtype="bfloat16"``), float32, float64
                (or int32).
            filters: An N+2 dimensional array with the same type as `input` and
                shape ``spatial_filter_shape + [in_channels, out_channels]``.
                Or a registered filter id.
            output_shape: A 1-D array representing the output shape of the
                deconvolution op.
            strides: An int or list of ints that has length 1, N or N+2. The
                stride of the sliding window for each dimension of `input`. If
                a single value is given it is replicated in the spatial
                dimensions. By default the N and C dimensions are set to 1. The
                dimension order is determined by the value of `data_format`.
            padding: A string, either 'VALID' or 'SAME'. The padding algorithm.
                For N=2 also a list of (before, after) pairs, one per
                dimension in `data_format` order, as `conv2d_transpose` takes.
            data_format: A string or None. Specifies whether the channel
                dimension of the `input` and output is the last dimension
                (default, or if `data_format` does not start with "NC"), or the
                second dimension (if `data_format` starts with "NC"). For N=1,
                the valid values are "NWC" (default) and "NCW". For N=2, the
                valid values are "NHWC" (default) and "NCHW". For N=3, the valid
                values are "NDHWC" (default) and "NCDHW".
            dilations: An int or list of ints that has length 1, N or N+2,
                defaults to 1. The dilation factor for each dimension of
                `input`. If a single value is given it is replicated in the
                spatial dimensions. By default the N and C dimensions are set to
                1. If set to k > 1, there will be k-1 skipped cells between each
                filter element on that dimension. The dimension order is
                determined by the value of `data_format`.
            name: Accepted for TensorFlow compatibility; ignored.
            bias, activation, dtype, timeout: keyword-only; see ``convserve.Client``.

        Returns:
            An array with the same type as `input` (float32 for
            ``dtype="bfloat16"``) and shape `output_shape`.

        Raises:
            ConvServeError: the server refused the call (e.g. INVALID_ARGUMENT
                with TensorFlow's message) or it failed or timed out.
            ValueError, TypeError: arguments refused before anything is sent.
        """
        return self._run(lambda: build_conv_transpose(
            input, filters, output_shape, strides, padding, data_format, dilations, bias=bias,
            activation=activation, dtype=dtype), timeout)


# -- the other calls' requests and replies ----------------------------------


def register_request(filter: ArrayLike, dtype: DType) -> pb.RegisterFilterRequest:
    """The RegisterFilter request for `filter` under the calls' `dtype=` choice."""
    return pb.RegisterFilterRequest(filter=Encoder(dtype).tensor(filter, "filter"))


def info_dict(message: Any) -> Dict[str, Any]:
    """A proto message as a plain dict: every field, enums by name, ints as ints."""
    result: Dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)

        def convert(v: Any, field: Any = field) -> Any:
            if field.type == field.TYPE_MESSAGE:
                return info_dict(v)
            if field.type == field.TYPE_ENUM:
                return field.enum_type.values_by_number[v].name if v in \
                    field.enum_type.values_by_number else v
            return v

        if field.label == field.LABEL_REPEATED:
            result[field.name] = [convert(v) for v in value]
        else:
            result[field.name] = convert(value)
    return result


def health_status(reply: Any) -> str:
    """A HealthCheckResponse's status by name ("SERVING", ...)."""
    health_pb2, _ = _health_modules()
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _health_modules() -> Tuple[Any, Any]:
    # grpcio-health-checking's modules define the same messages; use them when
    # present so the two never clash in the protobuf descriptor pool.
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:
        from convserve.health.v1 import health_pb2, health_pb2_grpc
    return health_pb2, health_pb2_grpc


# -- streaming ----------------------------------------------------------------


class StreamResults:
    """One ConvStream call's requests, and its replies put in order.

    The requests are every item of `requests` built into a ConvRequest (all
    before the first is sent) with ``id`` = its index. ``add(reply)`` returns
    the results that are due after `reply`: with ``ordered`` the run of
    results now complete in request order, else ``[(index, result)]``; a
    result is the decoded array or, for a refused request, its
    ConvServeError. ``emit(item)`` returns the item, or raises its
    ConvServeError unless ``return_exceptions``. ``finish()`` raises if the
    stream ended before every request was answered.
    """

    def __init__(self, requests: Iterable[StreamItem], ordered: bool,
                 return_exceptions: bool) -> None:
        self.requests: List[pb.ConvRequest] = []
        for index, item in enumerate(requests):
            request = pb.ConvRequest()
            request.CopyFrom(as_request(item))
            request.id = str(index)
            self.requests.append(request)
        self.ordered = ordered
        self.return_exceptions = return_exceptions
        self._pending: Dict[int, Union[Array, ConvServeError]] = {}
        self._next_index = 0
        self._received = 0

    def add(self, reply: pb.ConvResponse) -> List[StreamResult]:
        try:
            index = int(reply.id)
        except ValueError:
            raise ConvServeError(grpc.StatusCode.INTERNAL,
                                 f"reply with unknown id {reply.id!r}") from None
        result: Union[Array, ConvServeError]
        if reply.HasField("error"):
            result = ConvServeError(reply.error.code, reply.error.message)
        else:
            result = decode_tensor(reply.output)
        self._received += 1
        if not self.ordered:
            return [(index, result)]
        self._pending[index] = result
        due: List[StreamResult] = []
        while self._next_index in self._pending:
            due.append(self._pending.pop(self._next_index))
            self._next_index += 1
        return due

    def emit(self, item: StreamResult) -> StreamResult:
        result = item[1] if isinstance(item, tuple) else item
        if isinstance(result, ConvServeError) and not self.return_exceptions:
            raise result
        return item

    def finish(self) -> None:
        if self._received < len(self.requests):
            raise ConvServeError(grpc.StatusCode.INTERNAL,
                                 f"stream ended after {self._received} of "
                                 f"{len(self.requests)} replies")
