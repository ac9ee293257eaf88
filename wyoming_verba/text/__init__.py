"""Text on its way to a backend: cleanup (`cleanup`), SSML (`ssml`) and the incremental
sentence splitter (`splitter`) that hands each sentence on as soon as it is complete."""

from .cleanup import clean_sentence
from .splitter import SentenceSplitter, clean_text, split_sentences

__all__ = ["SentenceSplitter", "clean_sentence", "clean_text", "split_sentences"]
