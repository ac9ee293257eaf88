"""Audio on its way to the client: any backend's PCM in the stream's format (`convert`),
one loudness across backends (`loudness`) and clean sentence edges (`shaping`)."""

from .convert import AudioFormat, PcmConverter, resample, split_chunks
from .loudness import LoudnessTracker
from .shaping import SentenceShaper, silence

__all__ = ["AudioFormat", "LoudnessTracker", "PcmConverter", "SentenceShaper", "resample",
           "silence", "split_chunks"]
