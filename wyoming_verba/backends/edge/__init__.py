"""Microsoft Edge's online voices: the backend, its voice list and the MP3 decoder."""

from .backend import EdgeBackend

__all__ = ["EdgeBackend"]
