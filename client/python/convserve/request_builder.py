"""Building ConvRequest protos: op name + TensorFlow arguments + tensors -> request.

Contract: ``build_<op>(*args, **kwargs)`` for every op in ``OPS`` takes exactly
the arguments of ``Client.<op>`` (TensorFlow 2's positional arguments and
defaults, ``name`` accepted and ignored; keyword-only ``bias=``,
``activation=``, ``dtype=``; no ``timeout``) and returns the ``ConvRequest``
that method sends. ``build_request(op, ...)`` dispatches by name (unknown op:
``ValueError``). Argument mistakes that never reach the wire raise
``ValueError``/``TypeError``. ``Request`` records one op call for
``Client.stream``; ``as_request`` turns any accepted stream item into a
ConvRequest. Nothing here touches a channel.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from convserve._typing import Activation, ArrayLike, DType, FilterLike, Ints, Padding
from convserve.tensors import Encoder
from convserve.v1 import convserve_pb2 as pb

OPS = (
    "convolution",
    "conv1d",
    "conv2d",
    "conv3d",
    "depthwise_conv2d",
    "separable_conv2d",
    "atrous_conv2d",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
    "conv_transpose",
)

_ACTIVATIONS = {
    "none": pb.ACTIVATION_NONE,
    "linear": pb.ACTIVATION_NONE,
    "relu": pb.ACTIVATION_RELU,
    "relu6": pb.ACTIVATION_RELU6,
    "elu": pb.ACTIVATION_ELU,
    "leaky_relu": pb.ACTIVATION_LEAKY_RELU,
    "sigmoid": pb.ACTIVATION_SIGMOID,
    "tanh": pb.ACTIVATION_TANH,
}


def _ints(value: Optional[Ints]) -> List[int]:
    """None -> [], an int -> [int], a sequence -> list of ints (TF's int-or-list)."""
    if value is None:
        return []
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _padding(padding: Padding, op: str, explicit_allowed: bool) -> Tuple[int, List[int]]:
    """TF's padding argument -> (Padding enum, explicit_paddings list)."""
    if isinstance(padding, str):
        name = padding.upper()
        if name == "SAME":
            return pb.PADDING_SAME, []
        if name == "VALID":
            return pb.PADDING_VALID, []
        if name == "EXPLICIT":
            raise ValueError(f"{op}: give explicit padding as a list of (before, after) pairs")
        raise ValueError(f'{op}: padding must be "SAME", "VALID" or a list of pairs; got {padding!r}')
    if not explicit_allowed:
        raise ValueError(f'{op}: padding must be "SAME" or "VALID"; got {padding!r}')
    try:
        flat = np.asarray(padding, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{op}: explicit padding must be a list of (before, after) pairs; "
                         f"got {padding!r}") from error
    return pb.PADDING_EXPLICIT, [int(v) for v in flat]


def _activation(activation: Activation) -> int:
    if activation is None:
        return pb.ACTIVATION_NONE
    if isinstance(activation, str):
        key = activation.lower()
        if key.startswith("activation_"):
            key = key[len("activation_"):]
        if key in _ACTIVATIONS:
            return _ACTIVATIONS[key]
        raise ValueError(f"unknown activation {activation!r}; one of {sorted(_ACTIVATIONS)}")
    return int(activation)


def _request(op: str, message: Any, input: ArrayLike, filters: FilterLike, *,
             bias: Optional[FilterLike], activation: Activation, dtype: DType,
             pointwise: Optional[FilterLike] = None) -> pb.ConvRequest:
    encoder = Encoder(dtype)
    request = pb.ConvRequest(input=encoder.tensor(input, f"{op} input"),
                             filter=encoder.ref(filters, f"{op} filter"),
                             activation=_activation(activation))
    getattr(request, op).CopyFrom(message)
    if pointwise is not None:
        request.pointwise_filter.CopyFrom(encoder.ref(pointwise, f"{op} pointwise_filter"))
    if bias is not None:
        request.bias.CopyFrom(encoder.ref(bias, f"{op} bias"))
    return request


def _format(data_format: Optional[str]) -> str:
    return "" if data_format is None else str(data_format)


def build_convolution(input: ArrayLike, filters: FilterLike, strides: Optional[Ints] = None,
                      padding: Padding = "VALID", data_format: Optional[str] = None,
                      dilations: Optional[Ints] = None, name: Optional[str] = None, *,
                      bias: Optional[FilterLike] = None, activation: Activation = None,
                      dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.convolution`` (``tf.nn.convolution``)."""
    mode, explicit = _padding(padding, "convolution", True)
    message = pb.Convolution(strides=_ints(strides), padding=mode, explicit_paddings=explicit,
                             data_format=_format(data_format), dilations=_ints(dilations))
    return _request("convolution", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv1d(input: ArrayLike, filters: FilterLike, stride: Ints, padding: Padding,
                 data_format: Optional[str] = "NWC", dilations: Optional[Ints] = None,
                 name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                 activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv1d`` (``tf.nn.conv1d``)."""
    mode, _ = _padding(padding, "conv1d", False)
    message = pb.Conv1D(stride=_ints(stride), padding=mode, data_format=_format(data_format),
                        dilations=_ints(dilations))
    return _request("conv1d", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv2d(input: ArrayLike, filters: FilterLike, strides: Ints, padding: Padding,
                 data_format: Optional[str] = "NHWC", dilations: Optional[Ints] = None,
                 name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                 activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv2d`` (``tf.nn.conv2d``)."""
    mode, explicit = _padding(padding, "conv2d", True)
    message = pb.Conv2D(strides=_ints(strides), padding=mode, explicit_paddings=explicit,
                        data_format=_format(data_format), dilations=_ints(dilations))
    return _request("conv2d", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv3d(input: ArrayLike, filters: FilterLike, strides: Ints, padding: Padding,
                 data_format: Optional[str] = "NDHWC", dilations: Optional[Ints] = None,
                 name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                 activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv3d`` (``tf.nn.conv3d``)."""
    mode, _ = _padding(padding, "conv3d", False)
    message = pb.Conv3D(strides=_ints(strides), padding=mode, data_format=_format(data_format),
                        dilations=_ints(dilations))
    return _request("conv3d", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_depthwise_conv2d(input: ArrayLike, filter: FilterLike, strides: Ints, padding: Padding,
                           data_format: Optional[str] = None, dilations: Optional[Ints] = None,
                           name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                           activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.depthwise_conv2d`` (``tf.nn.depthwise_conv2d``)."""
    mode, explicit = _padding(padding, "depthwise_conv2d", True)
    message = pb.DepthwiseConv2D(strides=_ints(strides), padding=mode,
                                 explicit_paddings=explicit, data_format=_format(data_format),
                                 dilations=_ints(dilations))
    return _request("depthwise_conv2d", message, input, filter, bias=bias, activation=activation,
                    dtype=dtype)


def build_separable_conv2d(input: ArrayLike, depthwise_filter: FilterLike,
                           pointwise_filter: FilterLike, strides: Ints, padding: Padding,
                           data_format: Optional[str] = None, dilations: Optional[Ints] = None,
                           name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                           activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.separable_conv2d`` (``tf.nn.separable_conv2d``)."""
    mode, _ = _padding(padding, "separable_conv2d", False)
    message = pb.SeparableConv2D(strides=_ints(strides), padding=mode,
                                 data_format=_format(data_format), dilations=_ints(dilations))
    return _request("separable_conv2d", message, input, depthwise_filter, bias=bias,
                    activation=activation, dtype=dtype, pointwise=pointwise_filter)


def build_atrous_conv2d(value: ArrayLike, filters: FilterLike, rate: int, padding: Padding,
                        name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                        activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.atrous_conv2d`` (``tf.nn.atrous_conv2d``)."""
    mode, _ = _padding(padding, "atrous_conv2d", False)
    message = pb.AtrousConv2D(rate=int(rate), padding=mode)
    return _request("atrous_conv2d", message, value, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv1d_transpose(input: ArrayLike, filters: FilterLike, output_shape: Ints,
                           strides: Ints, padding: Padding = "SAME",
                           data_format: Optional[str] = "NWC", dilations: Optional[Ints] = None,
                           name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                           activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv1d_transpose`` (``tf.nn.conv1d_transpose``)."""
    mode, _ = _padding(padding, "conv1d_transpose", False)
    message = pb.Conv1DTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                                 padding=mode, data_format=_format(data_format),
                                 dilations=_ints(dilations))
    return _request("conv1d_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv2d_transpose(input: ArrayLike, filters: FilterLike, output_shape: Ints,
                           strides: Ints, padding: Padding = "SAME",
                           data_format: Optional[str] = "NHWC", dilations: Optional[Ints] = None,
                           name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                           activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv2d_transpose`` (``tf.nn.conv2d_transpose``)."""
    mode, explicit = _padding(padding, "conv2d_transpose", True)
    message = pb.Conv2DTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                                 padding=mode, explicit_paddings=explicit,
                                 data_format=_format(data_format), dilations=_ints(dilations))
    return _request("conv2d_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv3d_transpose(input: ArrayLike, filters: FilterLike, output_shape: Ints,
                           strides: Ints, padding: Padding = "SAME",
                           data_format: Optional[str] = "NDHWC", dilations: Optional[Ints] = None,
                           name: Optional[str] = None, *, bias: Optional[FilterLike] = None,
                           activation: Activation = None, dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv3d_transpose`` (``tf.nn.conv3d_transpose``)."""
    mode, _ = _padding(padding, "conv3d_transpose", False)
    message = pb.Conv3DTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                                 padding=mode, data_format=_format(data_format),
                                 dilations=_ints(dilations))
    return _request("conv3d_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv_transpose(input: ArrayLike, filters: FilterLike, output_shape: Ints, strides: Ints,
                         padding: Padding = "SAME", data_format: Optional[str] = None,
                         dilations: Optional[Ints] = None, name: Optional[str] = None, *,
                         bias: Optional[FilterLike] = None, activation: Activation = None,
                         dtype: DType = None) -> pb.ConvRequest:
    """The ConvRequest of ``Client.conv_transpose`` (``tf.nn.conv_transpose``).

    A list `padding` is sent as given; the server takes it when the op is 2-D
    (``len(output_shape) == 4``) and refuses it otherwise, as TensorFlow does.
    """
    mode, explicit = _padding(padding, "conv_transpose", True)
    message = pb.ConvTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                               padding=mode, explicit_paddings=explicit,
                               data_format=_format(data_format), dilations=_ints(dilations))
    return _request("conv_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


_BUILDERS: Dict[str, Callable[..., pb.ConvRequest]] = {op: globals()[f"build_{op}"] for op in OPS}


def build_request(op: str, *args: Any, **kwargs: Any) -> pb.ConvRequest:
    """The ConvRequest proto that ``Client.<op>(*args, **kwargs)`` would send."""
    if op not in _BUILDERS:
        raise ValueError(f"unknown op {op!r}; one of {OPS}")
    return _BUILDERS[op](*args, **kwargs)


class Request:
    """One op call for :meth:`Client.stream`: ``Request("conv2d", x, w, 1, "SAME", bias=b)``.

    The arguments are exactly those of the Client method of the same name
    (without ``timeout``).
    """

    op: str
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any]

    def __init__(self, op: str, *args: Any, **kwargs: Any) -> None:
        self.op, self.args, self.kwargs = op, args, kwargs

    def build(self) -> pb.ConvRequest:
        """The ConvRequest this call sends."""
        return build_request(self.op, *self.args, **self.kwargs)


#: What Client.stream accepts per request.
StreamItem = Union[Request, "pb.ConvRequest", Tuple[str, Sequence[Any]],
                   Tuple[str, Mapping[str, Any]], Tuple[str, Sequence[Any], Mapping[str, Any]]]


def as_request(item: StreamItem) -> pb.ConvRequest:
    """A stream item (Request, ConvRequest or (op, args, kwargs) tuple) -> ConvRequest."""
    if isinstance(item, Request):
        return item.build()
    if isinstance(item, pb.ConvRequest):
        return item
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], str):
        op, rest = item[0], list(item[1:])
        args: Tuple[Any, ...] = ()
        kwargs: Dict[str, Any] = {}
        if rest and isinstance(rest[0], (tuple, list)):
            args = tuple(rest.pop(0))
        if rest and isinstance(rest[0], dict):
            kwargs = rest.pop(0)
        if not rest:
            return build_request(op, *args, **kwargs)
    raise TypeError("stream items are Request(op, *args, **kwargs), (op, args), (op, kwargs), "
                    f"(op, args, kwargs) or ConvRequest protos; got {item!r}")

