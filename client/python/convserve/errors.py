"""ConvServeError: the one exception type for calls the server (or gRPC) refused.

Contract: ``ConvServeError(code, message)`` accepts a ``grpc.StatusCode`` or
its number (unknown numbers become ``UNKNOWN``); ``rpc_error`` converts a
``grpc.RpcError`` into one. Nothing here touches the network.
"""

from __future__ import annotations

from typing import Optional, Union

import grpc

_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class ConvServeError(Exception):
    """A call the server (or gRPC) refused.

    Attributes:
        code: the ``grpc.StatusCode``, e.g. ``grpc.StatusCode.INVALID_ARGUMENT``.
        message: the server's message (TensorFlow's wording where it has one).
    """

    code: grpc.StatusCode
    message: str

    def __init__(self, code: Union[grpc.StatusCode, int], message: Optional[str]) -> None:
        if isinstance(code, int):
            self.code = _STATUS_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
        else:
            self.code = code
        self.message = message or ""
        super().__init__(f"{self.code.name}: {self.message}")

    @property
    def details(self) -> str:
        """The server's message (grpc.RpcError's name for it)."""
        return self.message


def rpc_error(error: grpc.RpcError) -> ConvServeError:
    """A grpc.RpcError as a ConvServeError with the same code and details."""
    return ConvServeError(error.code(), error.details())
