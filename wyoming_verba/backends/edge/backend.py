"""Microsoft Edge's online voices through the unmodified `edge-tts` client.

Per sentence: one `Communicate` stream; each MP3 block is decoded as it arrives and
yielded as PCM at once, with `WordMark`s from Edge's word boundaries. edge-tts has no
timeout on a stall after audio started and reports a socket closed mid-stream as a
normal end, so this module adds its own timeouts and completeness check, retries a
transient failure once (only while nothing of the sentence was yielded) and maps
every failure to a typed BackendError. Cool-down across sentences is the chain's job."""

from __future__ import annotations

import asyncio
import logging
import math
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import edge_tts

from ...pcm import Pcm
from ...settings import Settings
from ..base import (
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Chunk,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
    WordMark,
)
from ..threads import wait_cancellable
from . import voices as edge_voices
from .errors import AttemptFailed, EdgeForbidden, EdgeNoAudio, EdgeStreamBroken, classify
from .mp3 import Mp3Decoder

_LOGGER = logging.getLogger(__name__)

TICKS_PER_SECOND = 10_000_000
SAMPLE_RATE = 24000  # of the MP3 format edge-tts asks for
# The MP3 decoder's output lags Edge's timeline by 529 samples; a word counts as sent
# only once its audio has really left, so word marks include the lag.
DECODER_DELAY_S = 529 / SAMPLE_RATE
REPROBE_MIN_INTERVAL = 5.0  # floor for re-fetching the voice list while Edge is unreachable
BIG_BLOCK_BYTES = 64 * 1024  # decode blocks larger than this off the event loop


# --- the backend ---------------------------------------------------------------


class EdgeBackend(Backend):
    name = "edge"
    normalizes_text = False  # Microsoft reads numbers well; its word marks index our text

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entries: list[dict[str, Any]] = list(edge_voices.BUILTIN_VOICES)
        self._list_source = "built-in"  # built-in | cache | online
        self._usable = False
        self._voices: list[Voice] = []
        self._reprobe: asyncio.Task[None] | None = None
        self._rebuild_voices()

    @property
    def cache_path(self) -> Path:
        return self.settings.data_dir / edge_voices.CACHE_FILE

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._check_voice_name()
        cached = await asyncio.to_thread(edge_voices.load_cache, self.cache_path)
        if cached:
            self._entries, self._list_source = cached, "cache"
        try:
            await self._refresh_voices()
        except EdgeForbidden as exc:
            raise BackendUnavailable(str(exc), backend=self.name) from exc
        except BackendError as exc:
            _LOGGER.warning("Edge voice list unavailable (%s); using the %s list (%d voices) "
                            "and probing again in the background", exc, self._list_source,
                            len(self._entries))
            self._set_usable(False)
        self._check_default_voice()
        self._rebuild_voices()

    async def stop(self) -> None:
        if self._reprobe is not None:
            self._reprobe.cancel()
            await asyncio.gather(self._reprobe, return_exceptions=True)
            self._reprobe = None

    def _check_voice_name(self) -> None:
        """Settings checks rate, volume and pitch; the voice's form is Edge's own rule."""
        voice = self.settings.edge_voice
        if not edge_voices.VOICE_NAME.match(voice):
            raise BackendUnavailable(
                f"--edge-voice {voice!r} is malformed: use a name like en-US-GuyNeural",
                backend=self.name)

    def _check_default_voice(self) -> None:
        known = {e["ShortName"] for e in self._entries}
        if self._list_source == "online" and self.settings.edge_voice not in known:
            raise BackendUnavailable(
                f"--edge-voice {self.settings.edge_voice!r} is not an Edge voice "
                f"({len(known)} voices known, e.g. en-US-GuyNeural)", backend=self.name)

    async def _refresh_voices(self) -> None:
        """Fetch the voice list; on success cache it and mark Edge usable."""
        try:
            async with asyncio.timeout(self.settings.edge_voice_list_timeout):
                entries = await edge_voices.fetch()
        except TimeoutError as exc:
            raise BackendTimeout(
                f"no voice list from Edge within {self.settings.edge_voice_list_timeout:g} s",
                backend=self.name) from exc
        except ValueError as exc:
            raise EdgeStreamBroken(f"bad voice list from Edge: {exc}",
                                   backend=self.name) from exc
        except Exception as exc:  # classified into a typed error
            raise classify(exc, self.name).error from exc
        self._entries, self._list_source = entries, "online"
        await asyncio.to_thread(edge_voices.save_cache, self.cache_path, entries)
        self._set_usable(True)
        self._rebuild_voices()  # also when a sentence had already set usable
        _LOGGER.debug("Edge voice list: %d voices", len(entries))

    async def _reprobe_loop(self) -> None:
        """Until the voice list came from the service itself. Not `while not usable`:
        a sentence that gets through marks Edge usable, but Home Assistant would then
        keep seeing the built-in (or cached) list until a restart."""
        interval = max(REPROBE_MIN_INTERVAL, self.settings.cooldown)
        while self._list_source != "online":
            await asyncio.sleep(interval)
            try:
                await self._refresh_voices()
            except BackendError as exc:
                _LOGGER.debug("Edge voice list still unavailable: %s", exc)
            except Exception:  # a bug must not end the retries
                _LOGGER.exception("fetching the Edge voice list failed")
        _LOGGER.info("Edge is reachable again: %d voices", len(self._entries))

    def _set_usable(self, usable: bool) -> None:
        self._usable = usable
        if not usable and (self._reprobe is None or self._reprobe.done()):
            try:
                self._reprobe = asyncio.get_running_loop().create_task(self._reprobe_loop())
            except RuntimeError:  # no loop (constructed outside asyncio)
                self._reprobe = None

    # --- voices ------------------------------------------------------------------

    def _rebuild_voices(self) -> None:
        entries = {e["ShortName"]: e for e in self._entries}
        # Names the user configured are speakable even when an old list lacks them.
        for name in (self.settings.edge_voice, self.settings.voice):
            if name and edge_voices.VOICE_NAME.match(name) and name not in entries:
                entries[name] = edge_voices.entry(name)
        default = self.settings.edge_voice
        ordered = sorted(entries.values(),
                         key=lambda e: (e["ShortName"] != default, e["Locale"], e["ShortName"]))
        self._voices = [edge_voices.to_voice(e) for e in ordered]

    def native_rate(self) -> int:
        return SAMPLE_RATE

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def available(self) -> bool:
        """False while the voice list or the last sentence says Edge is unreachable."""
        return self._usable

    # --- synthesis -----------------------------------------------------------------

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        self._check_voice(voice.name)
        loop = asyncio.get_running_loop()
        started = loop.time()
        yielded = False
        for attempt in (1, 2):
            try:
                async with aclosing(self._attempt(text, voice.name, utterance, started)) as it:
                    async for chunk in it:
                        yielded = True
                        yield chunk
                self._set_usable(True)
                return
            except AttemptFailed as failure:
                error = failure.error
                time_left = started + self.settings.edge_sentence_timeout - loop.time()
                if attempt == 2 or yielded or not failure.retry or time_left <= 0.1:
                    if isinstance(error, EdgeNoAudio) and not self._known(voice.name):
                        raise VoiceNotFound(f"Edge has no voice {voice.name!r}",
                                            backend=self.name) from None
                    # `installed` stays as the last voice-list probe said: cooling down
                    # after failed sentences is the chain's call.
                    raise error from None
                _LOGGER.debug("Edge attempt %d failed (%s); retrying", attempt, error)

    def _check_voice(self, name: str) -> None:
        if not edge_voices.VOICE_NAME.match(name):
            raise VoiceNotFound(f"{name!r} is not an Edge voice name (like en-US-GuyNeural)",
                                backend=self.name)
        if self._list_source != "built-in" and not self._known(name):
            raise VoiceNotFound(f"Edge has no voice {name!r}", backend=self.name)

    def _known(self, name: str) -> bool:
        return any(v.name == name for v in self._voices)

    async def _attempt(
        self, text: str, voice: str, utterance: Utterance, started: float
    ) -> AsyncGenerator[Chunk, None]:
        """One Communicate stream, with our own timeouts; raises only AttemptFailed or
        SynthesisCancelled."""
        s = self.settings
        loop = asyncio.get_running_loop()
        communicate = edge_tts.Communicate(
            text, voice, rate=s.edge_rate, volume=s.edge_volume, pitch=s.edge_pitch,
            boundary="WordBoundary", proxy=env_proxy(edge_tts.communicate.WSS_URL),
            # Our own timeouts below are tighter; these only have to be ints.
            connect_timeout=max(1, math.ceil(s.edge_first_audio_timeout)),
            receive_timeout=max(1, math.ceil(s.edge_sentence_timeout)),
        )
        stream = communicate.stream()
        decoder = Mp3Decoder()
        words = _WordMarker(text)
        received = 0  # MP3 bytes from edge-tts
        audio_seconds = 0.0
        pending: asyncio.Task[Any] | None = None
        try:
            while True:
                # Before audio: the first-audio timeout, within the sentence budget.
                # After: the gap timeout, and Edge must keep up with real time overall.
                if received == 0:
                    limit = min(s.edge_first_audio_timeout,
                                started + s.edge_sentence_timeout - loop.time())
                    what = "first audio"
                else:
                    limit = min(s.edge_chunk_timeout,
                                started + s.edge_sentence_timeout + audio_seconds - loop.time())
                    what = "the next audio block"
                pending = loop.create_task(_anext(stream))
                item = await _wait(pending, max(limit, 0.0), utterance)
                if item is None:  # timed out: `finally` cancels the pending read
                    raise AttemptFailed(BackendTimeout(
                        f"Edge sent nothing for {max(limit, 0.0):.1f} s (waiting for {what})",
                        backend=self.name), received == 0)
                pending = None
                if item is _END:
                    break
                if item["type"] == "audio":
                    received += len(item["data"])
                    self._check_complete(communicate, received, final=False)
                    for pcm in await self._decode(decoder, item["data"]):
                        audio_seconds += pcm.seconds
                        yield pcm
                elif item["type"] == "WordBoundary":
                    mark = words.mark(item)
                    if mark is not None:
                        yield mark
            self._check_complete(communicate, received, final=True)
            for pcm in decoder.flush():
                yield pcm
        except (AttemptFailed, SynthesisCancelled, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            raise classify(exc, self.name) from exc
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.wait([pending])
            await _close_quietly(stream)

    def _check_complete(self, communicate: edge_tts.Communicate, received: int,
                        final: bool) -> None:
        """Did every websocket session so far end with turn.end?

        edge-tts returns normally when the socket closes mid-stream, so the end of the
        iterator proves nothing. Its own state does: at each turn.end it moves the
        session's byte count `chunk_audio_bytes` into `cumulative_audio_bytes`, and it
        zeroes `chunk_audio_bytes` when the next session (text > 4096 bytes) starts. So
        cumulative + current == every byte we got, unless a session was cut short; and at
        the end of the stream `chunk_audio_bytes` must be 0. Checked on each block, so a
        cut first session is caught before the second session's audio is passed on."""
        state = communicate.state
        counted = state["cumulative_audio_bytes"] + state["chunk_audio_bytes"]
        if counted != received or (final and state["chunk_audio_bytes"]):
            raise AttemptFailed(EdgeStreamBroken(
                "Edge closed the connection mid-sentence (no turn.end)", backend=self.name),
                received == 0)

    @staticmethod
    async def _decode(decoder: Mp3Decoder, data: bytes) -> list[Pcm]:
        # Edge's usual blocks decode faster than a hop to a thread and back.
        if len(data) > BIG_BLOCK_BYTES:
            return await asyncio.to_thread(decoder.feed, data)
        return decoder.feed(data)


# --- helpers -------------------------------------------------------------------


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, or None.

    edge-tts opens its session with trust_env, but aiohttp then looks up only WSS_PROXY
    for a wss:// URL, while users set HTTPS_PROXY (the original project's proxies worked
    through it). So: WSS_PROXY, else HTTPS_PROXY (WS_PROXY, else HTTP_PROXY for ws://),
    honouring NO_PROXY. aiohttp tunnels through http:// proxies only."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    order = ("wss", "https") if parts.scheme in ("wss", "https") else ("ws", "http")
    return next((proxies[k] for k in order if proxies.get(k)), None)

_END = object()


async def _anext(stream: AsyncIterator[Any]) -> Any:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return _END


async def _wait(task: asyncio.Task[Any], limit: float, utterance: Utterance) -> Any:
    """The task's result, None on timeout; SynthesisCancelled when cancelled."""
    try:
        return await wait_cancellable(task, limit, utterance.cancel)
    except TimeoutError:
        return None


async def _close_quietly(stream: Any) -> None:
    try:
        await stream.aclose()
    except Exception as exc:  # closing a broken stream must not hide the real error
        _LOGGER.debug("closing the Edge stream: %s", exc)


class _WordMarker:
    """Turns Edge's WordBoundary events into WordMarks on the sentence's characters."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.cursor = 0

    def mark(self, item: dict[str, Any]) -> WordMark | None:
        word = item.get("text") or ""
        index = self.text.find(word, self.cursor) if word else -1
        if index < 0:  # Edge reworded it (numbers, abbreviations): no safe resume point
            return None
        self.cursor = index + len(word)
        audio_end = (item["offset"] + item["duration"]) / TICKS_PER_SECOND + DECODER_DELAY_S
        return WordMark(text_end=self.cursor, audio_end=audio_end)
