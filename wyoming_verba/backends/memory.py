"""Giving memory that a burst of synthesis freed back to the operating system.

glibc keeps freed memory inside the process for reuse: after a burst of long sentences
(onnxruntime's buffers are megabytes each) a server at rest can hold a hundred MB more
than it uses, a little more after every busy spell. `malloc_trim` returns those pages.
It is only worth calling when work has stopped for a while: pages handed back are
faulted in again by the next sentence (which costs CPU)."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable


def _find_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc has it; musl has none
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _find_trim()


def release_freed_memory() -> bool:
    """Hand the C heap's free pages back to the OS; True when anything was returned."""
    return bool(_TRIM(0)) if _TRIM is not None else False
