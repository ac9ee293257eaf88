"""Edge's failures as typed BackendErrors, and which of them a second attempt may fix.

What edge-tts and aiohttp raise is mapped once, here, so the backend only ever raises
BackendErrors and the chain can tell a dead token (not transient) from a busy service."""

from __future__ import annotations

import aiohttp
import edge_tts
from edge_tts.exceptions import NoAudioReceived, SkewAdjustmentError

from ..base import BackendError, BackendTimeout, BackendUnavailable
from .mp3 import Mp3DecodeError


class EdgeForbidden(BackendUnavailable):
    """403 even after edge-tts corrected the clock: the token scheme changed (upgrade
    edge-tts). Retrying does not help, so not transient."""

    code = "edge-forbidden"
    transient = False


class EdgeRateLimited(BackendUnavailable):
    code = "edge-rate-limited"


class EdgeNoAudio(BackendError):
    """Edge answered but sent no audio (twice)."""

    code = "edge-no-audio"


class EdgeStreamBroken(BackendError):
    """The stream ended without Edge's turn.end (socket closed mid-sentence) or broke
    the protocol: the audio so far is only part of the sentence."""

    code = "edge-stream-broken"


class AttemptFailed(Exception):
    """An attempt failed: `error` is what the caller sees, `retry` whether a second
    attempt may help (connection errors, timeouts, 429/5xx, a first no-audio)."""

    def __init__(self, error: BackendError, retry: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry = retry


def classify(exc: BaseException, backend: str = "edge") -> AttemptFailed:
    """Map what edge-tts/aiohttp raise to a typed error and a retry decision."""
    if isinstance(exc, AttemptFailed):
        return exc
    error: BackendError
    if isinstance(exc, aiohttp.ClientResponseError):  # includes WSServerHandshakeError
        status = exc.status
        if status == 403:  # edge-tts already fixed the clock and retried once
            error = EdgeForbidden(
                "Edge refused the request twice (HTTP 403) even after clock-skew correction; "
                "the token scheme probably changed: upgrade edge-tts", backend=backend)
            return AttemptFailed(error, retry=False)
        if status == 429:
            error = EdgeRateLimited("Edge is rate limiting (HTTP 429)", backend=backend)
            return AttemptFailed(error, retry=True)
        if status >= 500:
            error = BackendUnavailable(f"Edge service error (HTTP {status})", backend=backend)
            return AttemptFailed(error, retry=True)
        error = BackendError(f"Edge refused the request (HTTP {status})", backend=backend)
        error.transient = False
        return AttemptFailed(error, retry=False)
    if isinstance(exc, SkewAdjustmentError):  # a 403 without a usable Date header
        error = EdgeForbidden(f"Edge refused the request (HTTP 403): {exc}", backend=backend)
        return AttemptFailed(error, retry=False)
    if isinstance(exc, NoAudioReceived):
        error = EdgeNoAudio("Edge sent no audio for this text", backend=backend)
        return AttemptFailed(error, retry=True)
    if isinstance(exc, TimeoutError):  # aiohttp's socket timeouts
        error = BackendTimeout(f"Edge timed out: {exc or 'no answer'}", backend=backend)
        return AttemptFailed(error, retry=True)
    if isinstance(exc, (aiohttp.ClientError, OSError)):  # refused, reset, DNS, proxy...
        error = BackendUnavailable(f"cannot reach Edge: {exc or type(exc).__name__}",
                                   backend=backend)
        return AttemptFailed(error, retry=True)
    if isinstance(exc, (edge_tts.exceptions.EdgeTTSException, Mp3DecodeError)):
        error = EdgeStreamBroken(f"bad answer from Edge: {exc}", backend=backend)
        return AttemptFailed(error, retry=False)
    error = BackendError(f"Edge failed: {type(exc).__name__}: {exc}", backend=backend)
    return AttemptFailed(error, retry=False)
