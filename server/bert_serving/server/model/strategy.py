"""``PoolingStrategy``: the one definition of how token vectors become a sentence vector.

The command line parses it, the encoder and ``pooling`` compute it, the HTTP proxy and the
docs read it; none of them keeps a list of names of its own. No TensorFlow here, so that
parsing arguments stays light.
"""

from __future__ import annotations

import argparse
from enum import Enum


class PoolingStrategy(str, Enum):
    """How token vectors become one sentence vector.

    Members are strings equal to their names, so they print and serialise to JSON as the
    user typed them. ``CLS_TOKEN`` and ``SEP_TOKEN`` select the same token as
    ``FIRST_TOKEN`` and ``LAST_TOKEN``; they stay distinct members so the server reports
    the name it was given.
    """

    NONE = "NONE"
    REDUCE_MEAN = "REDUCE_MEAN"
    REDUCE_MAX = "REDUCE_MAX"
    REDUCE_MEAN_MAX = "REDUCE_MEAN_MAX"
    FIRST_TOKEN = "FIRST_TOKEN"
    LAST_TOKEN = "LAST_TOKEN"
    CLS_TOKEN = "CLS_TOKEN"
    SEP_TOKEN = "SEP_TOKEN"
    CLS_POOLED = "CLS_POOLED"

    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)

    @property
    def takes_first_token(self) -> bool:
        return self in (PoolingStrategy.FIRST_TOKEN, PoolingStrategy.CLS_TOKEN)

    @property
    def takes_last_token(self) -> bool:
        return self in (PoolingStrategy.LAST_TOKEN, PoolingStrategy.SEP_TOKEN)

    @property
    def reads_special_token(self) -> bool:
        """True when the result is taken from the [CLS] or [SEP] position alone."""
        return self.takes_first_token or self.takes_last_token or self.needs_pooler

    @property
    def needs_pooler(self) -> bool:
        """The model's pooler layer computes it (from the last layer's [CLS] vector)."""
        return self is PoolingStrategy.CLS_POOLED

    @property
    def keeps_tokens(self) -> bool:
        """Every token's vector is returned, ``[B, T, D]`` instead of ``[B, D]``."""
        return self is PoolingStrategy.NONE

    @classmethod
    def parse(cls, text: str) -> PoolingStrategy:
        """A strategy from its name, case-insensitively; ValueError lists the valid names."""
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            valid = ", ".join(member.name for member in cls)
            raise ValueError(
                f"unknown pooling strategy {text!r}; valid values are: {valid}"
            ) from None

    @classmethod
    def from_string(cls, text: str) -> PoolingStrategy:
        """``parse`` for argparse's ``type``, which reports ArgumentTypeError nicely."""
        try:
            return cls.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
