"""Text to model inputs: Google's BERT tokenization and the feature arrays built from it."""

from .features import InputFeatures, build_features
from .vocab import VocabError, load_vocab
from .wordpiece import BertTokenizer

__all__ = ["BertTokenizer", "InputFeatures", "VocabError", "build_features", "load_vocab"]
