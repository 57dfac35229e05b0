"""ConvServe's Python client: TensorFlow's tf.nn convolution ops, computed remotely.

    import convserve
    with convserve.Client("127.0.0.1:50051") as client:
        y = client.conv2d(x, w, strides=2, padding="SAME")   # as tf.nn.conv2d

    async with convserve.aio.Client("127.0.0.1:50051") as client:   # asyncio
        y = await client.conv2d(x, w, strides=2, padding="SAME")

Install it with pip (``pip install ./client/python``; offline on Debian 12:
``pip install --no-build-isolation --no-index ./client/python``). The
protobuf and gRPC modules (``convserve.v1`` and ``convserve.health.v1``) are
generated from proto/ when the package is built and are part of the installed
package only. See client/python/README.md.
"""

__version__ = "0.1.0"

try:
    from convserve.v1 import convserve_pb2 as _probe  # noqa: F401
except ImportError as _error:  # pragma: no cover - a setup problem, explained
    raise ImportError(
        "convserve: the generated module convserve.v1.convserve_pb2 is missing: this "
        f"convserve ({__path__[0]}) is the source tree, not an installed package. Install it "
        "(pip install ./client/python; see client/python/README.md) and import it from "
        f"outside client/python. Original error: {_error}") from _error

from convserve import aio
from convserve._typing import CLIENT_TIMEOUT
from convserve.bfloat16 import from_bfloat16_bits, to_bfloat16_bits
from convserve.client import Client
from convserve.errors import ConvServeError
from convserve.request_builder import OPS, Request, build_request

__all__ = [
    "CLIENT_TIMEOUT",
    "Client",
    "ConvServeError",
    "OPS",
    "Request",
    "aio",
    "build_request",
    "from_bfloat16_bits",
    "to_bfloat16_bits",
]
