"""bert-as-service server: BERT on TensorFlow 2 behind a ZeroMQ pipeline."""

__version__ = "2.0.0"

from .server import BertServer, ServerStartError

__all__ = ["BertServer", "ServerStartError", "__version__"]
