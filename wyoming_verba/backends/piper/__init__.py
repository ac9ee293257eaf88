"""Piper voices on the CPU: the backend, voices on disk, downloads and the sentence pool."""

from .backend import PiperBackend

__all__ = ["PiperBackend"]
