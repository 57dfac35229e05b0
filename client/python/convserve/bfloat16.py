"""bfloat16 <-> float32 in NumPy, which has no bfloat16 dtype.

A bfloat16 is the upper 16 bits of an IEEE binary32. These helpers carry
bfloat16 tensors as uint16 arrays of their bit patterns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def to_bfloat16_bits(x: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """Rounds float32 values to bfloat16 (round to nearest, ties to even).

    Returns a uint16 array of the same shape holding the bfloat16 bit patterns.
    Values beyond bfloat16's range become +-inf; NaNs stay NaNs (quiet).
    """
    a = np.ascontiguousarray(x, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    # Add 0x7FFF plus the lowest kept bit, then truncate: ties go to even.
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = rounded.astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        bits[nan] = ((u[nan] >> 16) | 0x0040).astype(np.uint16)
    return bits


def from_bfloat16_bits(bits: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Widens bfloat16 bit patterns (a uint16 array) to float32, exactly."""
    b = np.ascontiguousarray(bits)
    if b.dtype != np.uint16:
        raise TypeError(f"from_bfloat16_bits expects a uint16 array, got {b.dtype}")
    return (b.astype(np.uint32) << 16).view(np.float32)


def round_to_bfloat16(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """float32 values rounded to the nearest bfloat16, returned as float32."""
    return from_bfloat16_bits(to_bfloat16_bits(x))
