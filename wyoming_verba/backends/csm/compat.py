"""Which transformers releases CSM runs on, and the one check that refuses the others.

transformers renames keywords between minor releases and silently ignores unknown ones:
5.24 renamed the model forwards' `past_key_values=` to `cache=`, and 5.0-5.23 drop an
unknown `cache=` without a word, so every step would run without a KV cache (noise, no
error). Hence: a range checked against the releases we test (`pyproject.toml` declares the
same one; a test keeps the two equal), a refusal at start-up outside it, and the cache
keyword taken from the installed forward's own signature, never assumed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..base import BackendUnavailable

# [lowest, first unsupported): 5.21 moved Mimi's decoder modules to the layout the streaming
# decoder walks; checked on 5.21.0 and 5.25.0 (the newest release when this was written).
# 5.0.0 fails the streaming-decode and generate() comparisons.
SUPPORTED_TRANSFORMERS = ("5.21", "5.26")
SUPPORTED_SPEC = f">={SUPPORTED_TRANSFORMERS[0]},<{SUPPORTED_TRANSFORMERS[1]}"


class UnsupportedTransformers(BackendUnavailable):
    """The installed transformers is outside the tested range: refuse before loading."""

    transient = False


def check_transformers() -> str:
    """Return the installed transformers version, or raise UnsupportedTransformers."""
    import transformers
    from packaging.version import InvalidVersion, Version

    installed = str(getattr(transformers, "__version__", "unknown"))
    low, high = (Version(v) for v in SUPPORTED_TRANSFORMERS)
    try:
        ok = low <= Version(installed) < high
    except InvalidVersion:
        ok = False
    if not ok:
        raise UnsupportedTransformers(
            f"CSM needs transformers {SUPPORTED_SPEC}, but {installed} is installed "
            f"(other releases run CSM without its KV cache or break its modules). Fix: "
            f"pip install 'transformers{SUPPORTED_SPEC}'", backend="csm")
    return installed


def cache_keyword(forward: Callable[..., Any]) -> str:
    """The name under which this forward takes its KV cache: `cache` (5.24+) or
    `past_key_values` (older; 5.24+ still accept it with a deprecation warning)."""
    params = inspect.signature(forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise UnsupportedTransformers(
        f"{getattr(forward, '__qualname__', forward)} takes no KV cache keyword: this "
        f"transformers release is not supported (use {SUPPORTED_SPEC})", backend="csm")
