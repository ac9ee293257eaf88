"""Sesame CSM-1b backend (torch and transformers are imported only when it starts)."""

from .backend import CsmBackend, CsmOutOfMemory

__all__ = ["CsmBackend", "CsmOutOfMemory"]
