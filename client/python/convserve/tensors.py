"""NumPy arrays <-> the wire ``Tensor`` (and ``TensorRef``) protos.

Contract:

- ``Encoder(dtype)`` validates a call's ``dtype=`` choice (``None``,
  ``"bfloat16"``, or one of ``"float16"``/``"float32"``/``"float64"``/
  ``"int32"``; ``ValueError`` otherwise). Its ``tensor(value, what)`` returns a
  little-endian wire Tensor: with ``None`` arrays keep their dtype and Python
  numbers/lists convert as ``tf.constant`` does (float32 / int32); with
  ``"bfloat16"`` values are rounded from float32; otherwise they are cast.
  Unsupported dtypes raise ``TypeError`` naming ``what``. ``ref(value, what)``
  wraps a string as a registered filter id, anything else as an inline tensor.
- ``decode_tensor(tensor)`` returns a native-endian NumPy array that owns its
  data (bfloat16 is widened to float32); an unknown wire dtype raises
  ``ConvServeError(INTERNAL)``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import grpc
import numpy as np
import numpy.typing as npt

from convserve._typing import DType, FilterLike
from convserve.bfloat16 import from_bfloat16_bits, to_bfloat16_bits
from convserve.errors import ConvServeError
from convserve.v1 import convserve_pb2 as pb

_NUMPY_TO_WIRE: Dict[np.dtype[Any], int] = {
    np.dtype(np.float32): pb.DATA_TYPE_FLOAT32,
    np.dtype(np.float64): pb.DATA_TYPE_FLOAT64,
    np.dtype(np.float16): pb.DATA_TYPE_FLOAT16,
    np.dtype(np.int32): pb.DATA_TYPE_INT32,
}
_WIRE_TO_NUMPY: Dict[int, np.dtype[Any]] = {
    pb.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    pb.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    pb.DATA_TYPE_FLOAT16: np.dtype("<f2"),
    pb.DATA_TYPE_INT32: np.dtype("<i4"),
    pb.DATA_TYPE_BFLOAT16: np.dtype("<u2"),
}
_CAST_DTYPES = {"float16", "float32", "float64", "int32"}


class Encoder:
    """Turns arrays into wire Tensors under the call's `dtype=` choice."""

    dtype: Optional[str]

    def __init__(self, dtype: DType = None) -> None:
        if dtype is not None:
            dtype = np.dtype(dtype).name if not isinstance(dtype, str) else dtype.lower()
            if dtype != "bfloat16" and dtype not in _CAST_DTYPES:
                raise ValueError(f"dtype must be None, 'bfloat16' or one of "
                                 f"{sorted(_CAST_DTYPES)}; got {dtype!r}")
        self.dtype = dtype

    def tensor(self, value: npt.ArrayLike, what: str) -> pb.Tensor:
        """`value` as a wire Tensor; `what` names it in errors."""
        if self.dtype == "bfloat16":
            array = np.asarray(value, dtype=np.float32)
            return pb.Tensor(dtype=pb.DATA_TYPE_BFLOAT16, shape=array.shape,
                             data=to_bfloat16_bits(array).astype("<u2").tobytes())
        if self.dtype is not None:
            array = np.asarray(value, dtype=self.dtype)
        elif isinstance(value, np.ndarray) or isinstance(value, np.generic):
            array = np.asarray(value)
        else:
            # Python numbers and lists convert as tf.constant does: float32 / int32.
            array = np.asarray(value)
            if array.dtype.kind == "f":
                array = array.astype(np.float32)
            elif array.dtype.kind in "iub":
                array = array.astype(np.int32)
        wire = _NUMPY_TO_WIRE.get(array.dtype.newbyteorder("="))
        if wire is None:
            raise TypeError(
                f"{what}: dtype {array.dtype} is not supported; use float16, float32, "
                "float64 or int32 arrays, or dtype='bfloat16' with float32 arrays")
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        return pb.Tensor(dtype=wire, shape=array.shape,
                         data=np.ascontiguousarray(little).tobytes())

    def ref(self, value: FilterLike, what: str) -> pb.TensorRef:
        """A filter id (str) or an array (as :meth:`tensor`) as a wire TensorRef."""
        if isinstance(value, str):
            return pb.TensorRef(filter_id=value)
        return pb.TensorRef(tensor=self.tensor(value, what))


def decode_tensor(tensor: pb.Tensor) -> npt.NDArray[Any]:
    """A wire Tensor -> NumPy array (bfloat16 is widened to float32)."""
    wire_dtype = _WIRE_TO_NUMPY.get(tensor.dtype)
    if wire_dtype is None:
        raise ConvServeError(grpc.StatusCode.INTERNAL,
                             f"reply tensor has unknown dtype {tensor.dtype}")
    array = np.frombuffer(tensor.data, dtype=wire_dtype).reshape(tuple(tensor.shape))
    if tensor.dtype == pb.DATA_TYPE_BFLOAT16:
        return from_bfloat16_bits(array)
    return array.astype(wire_dtype.newbyteorder("="), copy=True)
