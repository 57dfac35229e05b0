"""Type aliases of the public API (the argument kinds tf.nn's ops take)."""

from __future__ import annotations

import enum
from typing import Any, Sequence, Union

import numpy as np
import numpy.typing as npt

#: A result: a NumPy array of the input's dtype (float32 for bfloat16 calls).
Array = npt.NDArray[Any]
#: An input: a NumPy array, or anything np.asarray takes (lists convert as tf.constant does).
ArrayLike = npt.ArrayLike
#: A filter, pointwise filter or bias: an array, or a filter id from register_filter.
FilterLike = Union[npt.ArrayLike, str]
#: TF's "an int or a list of ints" (strides, dilations, output_shape).
Ints = Union[int, Sequence[int], npt.NDArray[np.integer[Any]]]
#: "SAME", "VALID", or explicit (before, after) pairs per dimension.
Padding = Union[str, Sequence[Sequence[int]], npt.NDArray[np.integer[Any]]]
#: "relu", "relu6", "elu", "leaky_relu", "sigmoid", "tanh" (or the proto's enum number), or None.
Activation = Union[str, int, None]
#: None, "bfloat16", or a NumPy dtype name / dtype ("float16", "float32", "float64", "int32").
DType = Union[str, npt.DTypeLike]


class UseClientTimeout(enum.Enum):
    """The type of ``CLIENT_TIMEOUT``: a call's ``timeout=`` default."""

    CLIENT_TIMEOUT = "the client's timeout"

    def __repr__(self) -> str:
        return "<the client's timeout>"


#: Default of every call's ``timeout=``: use the client's ``timeout``.
CLIENT_TIMEOUT = UseClientTimeout.CLIENT_TIMEOUT
#: A call's deadline in seconds, None (no deadline) or CLIENT_TIMEOUT.
Timeout = Union[float, None, UseClientTimeout]
