"""bert-as-service client: numpy and pyzmq only, no TensorFlow."""

__version__ = "2.0.0"

from .async_client import AsyncBertClient, AsyncBertClientTimeoutError
from .client import BertClient, Response
from .concurrent import ConcurrentBertClient
from .errors import BertClientTimeoutError, BertServerError, VersionMismatchError
from .handshake import HandshakeError

__all__ = [
    "AsyncBertClient",
    "AsyncBertClientTimeoutError",
    "BertClient",
    "BertClientTimeoutError",
    "BertServerError",
    "ConcurrentBertClient",
    "HandshakeError",
    "Response",
    "VersionMismatchError",
    "__version__",
]
