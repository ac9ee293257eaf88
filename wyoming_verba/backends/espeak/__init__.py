"""espeak-ng, the offline voice of last resort: the backend, the library binding and
its voice list."""

from .backend import EspeakBackend

__all__ = ["EspeakBackend"]
