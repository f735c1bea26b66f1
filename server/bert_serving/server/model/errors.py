"""The one exception type for a model that cannot be served."""


class ModelError(ValueError):
    """A model folder, config, vocab or checkpoint that cannot be served.

    Raised in the main process before any worker starts, with the file and the problem
    in the message, so that a user sees one clear line instead of a worker traceback.
    """
