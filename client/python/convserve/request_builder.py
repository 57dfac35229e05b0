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

import numpy as np

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


def _ints(value):
    """None -> [], an int -> [int], a sequence -> list of ints (TF's int-or-list)."""
    if value is None:
        return []
    if np.ndim(value) == 0:
        return [int(value)]
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _padding(padding, op, explicit_allowed):
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


def _activation(activation):
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


def _request(op, message, input, filters, *, bias, activation, dtype, pointwise=None):
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


def _format(data_format):
    return "" if data_format is None else str(data_format)


def build_convolution(input, filters, strides=None, padding="VALID", data_format=None,
                      dilations=None, name=None, *, bias=None, activation=None, dtype=None):
    padding, explicit = _padding(padding, "convolution", True)
    message = pb.Convolution(strides=_ints(strides), padding=padding, explicit_paddings=explicit,
                             data_format=_format(data_format), dilations=_ints(dilations))
    return _request("convolution", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv1d(input, filters, stride, padding, data_format="NWC", dilations=None, name=None,
                 *, bias=None, activation=None, dtype=None):
    padding, _ = _padding(padding, "conv1d", False)
    message = pb.Conv1D(stride=_ints(stride), padding=padding, data_format=_format(data_format),
                        dilations=_ints(dilations))
    return _request("conv1d", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None, name=None,
                 *, bias=None, activation=None, dtype=None):
    padding, explicit = _padding(padding, "conv2d", True)
    message = pb.Conv2D(strides=_ints(strides), padding=padding, explicit_paddings=explicit,
                        data_format=_format(data_format), dilations=_ints(dilations))
    return _request("conv2d", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None, name=None,
                 *, bias=None, activation=None, dtype=None):
    padding, _ = _padding(padding, "conv3d", False)
    message = pb.Conv3D(strides=_ints(strides), padding=padding, data_format=_format(data_format),
                        dilations=_ints(dilations))
    return _request("conv3d", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_depthwise_conv2d(input, filter, strides, padding, data_format=None, dilations=None,
                           name=None, *, bias=None, activation=None, dtype=None):
    padding, explicit = _padding(padding, "depthwise_conv2d", True)
    message = pb.DepthwiseConv2D(strides=_ints(strides), padding=padding,
                                 explicit_paddings=explicit, data_format=_format(data_format),
                                 dilations=_ints(dilations))
    return _request("depthwise_conv2d", message, input, filter, bias=bias, activation=activation,
                    dtype=dtype)


def build_separable_conv2d(input, depthwise_filter, pointwise_filter, strides, padding,
                           data_format=None, dilations=None, name=None, *, bias=None,
                           activation=None, dtype=None):
    padding, _ = _padding(padding, "separable_conv2d", False)
    message = pb.SeparableConv2D(strides=_ints(strides), padding=padding,
                                 data_format=_format(data_format), dilations=_ints(dilations))
    return _request("separable_conv2d", message, input, depthwise_filter, bias=bias,
                    activation=activation, dtype=dtype, pointwise=pointwise_filter)


def build_atrous_conv2d(value, filters, rate, padding, name=None, *, bias=None, activation=None,
                        dtype=None):
    padding, _ = _padding(padding, "atrous_conv2d", False)
    message = pb.AtrousConv2D(rate=int(rate), padding=padding)
    return _request("atrous_conv2d", message, value, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv2d_transpose(input, filters, output_shape, strides, padding="SAME",
                           data_format="NHWC", dilations=None, name=None, *, bias=None,
                           activation=None, dtype=None):
    padding, _ = _padding(padding, "conv2d_transpose", False)
    message = pb.Conv2DTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                                 padding=padding, data_format=_format(data_format),
                                 dilations=_ints(dilations))
    return _request("conv2d_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv3d_transpose(input, filters, output_shape, strides, padding="SAME",
                           data_format="NDHWC", dilations=None, name=None, *, bias=None,
                           activation=None, dtype=None):
    padding, _ = _padding(padding, "conv3d_transpose", False)
    message = pb.Conv3DTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                                 padding=padding, data_format=_format(data_format),
                                 dilations=_ints(dilations))
    return _request("conv3d_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


def build_conv_transpose(input, filters, output_shape, strides, padding="SAME", data_format=None,
                         dilations=None, name=None, *, bias=None, activation=None, dtype=None):
    padding, _ = _padding(padding, "conv_transpose", False)
    message = pb.ConvTranspose(output_shape=_ints(output_shape), strides=_ints(strides),
                               padding=padding, data_format=_format(data_format),
                               dilations=_ints(dilations))
    return _request("conv_transpose", message, input, filters, bias=bias, activation=activation,
                    dtype=dtype)


_BUILDERS = {op: globals()[f"build_{op}"] for op in OPS}


def build_request(op, *args, **kwargs):
    """The ConvRequest proto that ``Client.<op>(*args, **kwargs)`` would send."""
    if op not in _BUILDERS:
        raise ValueError(f"unknown op {op!r}; one of {OPS}")
    return _BUILDERS[op](*args, **kwargs)


class Request:
    """One op call for :meth:`Client.stream`: ``Request("conv2d", x, w, 1, "SAME", bias=b)``.

    The arguments are exactly those of the Client method of the same name
    (without ``timeout``).
    """

    def __init__(self, op, *args, **kwargs):
        self.op, self.args, self.kwargs = op, args, kwargs

    def build(self):
        return build_request(self.op, *self.args, **self.kwargs)


def as_request(item):
    """A stream item (Request, ConvRequest or (op, args, kwargs) tuple) -> ConvRequest."""
    if isinstance(item, Request):
        return item.build()
    if isinstance(item, pb.ConvRequest):
        return item
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], str):
        op, rest = item[0], list(item[1:])
        args, kwargs = (), {}
        if rest and isinstance(rest[0], (tuple, list)):
            args = tuple(rest.pop(0))
        if rest and isinstance(rest[0], dict):
            kwargs = rest.pop(0)
        if not rest:
            return build_request(op, *args, **kwargs)
    raise TypeError("stream items are Request(op, *args, **kwargs), (op, args), (op, kwargs), "
                    f"(op, args, kwargs) or ConvRequest protos; got {item!r}")

