"""Another Wyoming TTS server (e.g. wyoming-verba with CSM on a GPU host) as a backend."""

from .backend import RemoteBackend

__all__ = ["RemoteBackend"]
