"""A local fake of Microsoft's Edge read-aloud service, for offline tests.

It speaks the real wire format (the one `edge-tts` 7.3.1 parses), serves real MP3 bytes
(encoded with lameenc: MPEG-2 Layer III, 24 kHz, 48 kbit/s mono like Edge) and checks
the Sec-MS-GEC token against its own clock, so the library's clock-skew handling runs
for real. Usage:

    async with FakeEdge(mode="normal", pace=0.01) as fake:
        fake.patch(monkeypatch)            # points edge_tts at this server
        ...                                # use the unmodified edge_tts / the backend
        assert fake.sessions == 1

Behaviour knobs (change them at any time; a test can also queue one mode per
connection with `fake.queue("503", "normal")`):

    mode                 normal | forbidden | 429 | 503 | no_audio | stall_before_audio |
                         stall_after_audio | close_mid_stream | drop_mid_stream
    clock_skew           the fake's clock minus the real one, in seconds; a request whose
                         token does not match the fake's clock gets 403 + a Date header,
                         exactly like Edge (so clock_skew=3600 gives "403 once, then fixed")
    pace                 seconds between audio blocks (0 = as fast as possible)
    first_audio_delay    seconds between turn.start and the first audio block (a slow service)
    block_bytes          MP3 bytes per binary message
    blocks_before_fault  blocks sent before stall_after_audio / *_mid_stream strike
    word_seconds         audio length per word of text; `audio_for` can be replaced
    voice_list           what GET /voices/list returns (also decides which voices speak)
    voice_list_mode      normal | forbidden | 503 | stall

Counters: connections (websocket upgrade attempts, accepted or not), hosts (the Host
of each upgrade: shows a request came through a proxy), sessions (accepted websockets),
requests (one SsmlRequest per SSML message), voice_list_requests, blocks_sent,
last_block_at and block_times (loop time), mp3_sent (per session). `pause_after_block(n)`
/ `resume()` hold a stream after n blocks so a test can check what the client did first."""

from __future__ import annotations

import asyncio
import collections
import html
import json
import re
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import lameenc
import numpy as np
from aiohttp import WSMsgType, web

RATE = 24000
BITRATE_KBPS = 48
TICKS_PER_SECOND = 10_000_000
MODES = (
    "normal", "forbidden", "429", "503", "no_audio", "stall_before_audio",
    "stall_after_audio", "close_mid_stream", "drop_mid_stream",
)

DEFAULT_VOICES: list[dict[str, Any]] = [
    {
        "Name": f"Microsoft Server Speech Text to Speech Voice ({loc}, {short})",
        "ShortName": f"{loc}-{short}",
        "Gender": gender,
        "Locale": loc,
        "SuggestedCodec": "audio-24khz-48kbitrate-mono-mp3",
        "FriendlyName": f"Microsoft {short[:-6]} Online (Natural) - {lang}",
        "Status": "GA",
        "VoiceTag": {"ContentCategories": ["General"], "VoicePersonalities": ["Friendly"]},
    }
    for loc, short, gender, lang in (
        ("en-US", "GuyNeural", "Male", "English (United States)"),
        ("en-US", "JennyNeural", "Female", "English (United States)"),
        ("en-GB", "SoniaNeural", "Female", "English (United Kingdom)"),
        ("de-DE", "KatjaNeural", "Female", "German (Germany)"),
        ("fr-FR", "DeniseNeural", "Female", "French (France)"),
    )
]


def encode_mp3(pcm: np.ndarray, rate: int = RATE, kbps: int = BITRATE_KBPS) -> bytes:
    """int16 mono samples → MP3 like Edge's audio-24khz-48kbitrate-mono-mp3."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(2)
    return bytes(encoder.encode(pcm.astype("<i2").tobytes()) + encoder.flush())


def tone_mp3(seconds: float, freq: float = 220.0, rate: int = RATE) -> bytes:
    """A tone whose pitch glides a little, so misplaced or lost blocks change the PCM."""
    t = np.arange(int(seconds * rate)) / rate
    f = freq * (1.0 + 0.5 * t / max(seconds, 1e-9))
    samples = 8000 * np.sin(2 * np.pi * np.cumsum(f) / rate)
    return encode_mp3(samples.astype(np.int16), rate)


@dataclass(frozen=True)
class SsmlRequest:
    voice: str  # short name, e.g. en-US-GuyNeural
    text: str  # unescaped
    rate: str
    volume: str
    pitch: str
    word_boundaries: bool


_SSML = re.compile(
    r"<voice name='Microsoft Server Speech Text to Speech Voice \((?P<loc>[^,]+), "
    r"(?P<name>[^)]+)\)'><prosody pitch='(?P<pitch>[^']*)' rate='(?P<rate>[^']*)' "
    r"volume='(?P<volume>[^']*)'>(?P<text>.*)</prosody>",
    re.S,
)


def _text_message(request_id: str, path: str, body: str) -> str:
    return (
        f"X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\n"
        f"Path:{path}\r\n\r\n{body}"
    )


def _audio_message(request_id: str, data: bytes) -> bytes:
    # edge-tts reads `header_length` bytes of headers after the 2-byte length, then the
    # audio; the headers end with CRLF like the real service's.
    content_type = "Content-Type:audio/mpeg\r\n" if data else ""
    headers = f"X-RequestId:{request_id}\r\n{content_type}Path:audio\r\n".encode()
    return len(headers).to_bytes(2, "big") + headers + data


class FakeEdge:
    def __init__(
        self,
        mode: str = "normal",
        *,
        pace: float = 0.0,
        block_bytes: int = 1440,
        clock_skew: float = 0.0,
        blocks_before_fault: int = 1,
        word_seconds: float = 0.25,
        voice_list: list[dict[str, Any]] | None = None,
    ) -> None:
        self.mode = mode
        self.pace = pace
        self.first_audio_delay = 0.0
        self.block_bytes = block_bytes
        self.clock_skew = clock_skew
        self.blocks_before_fault = blocks_before_fault
        self.word_seconds = word_seconds
        self.voice_list = list(DEFAULT_VOICES if voice_list is None else voice_list)
        self.voice_list_mode = "normal"
        self._queued: collections.deque[str] = collections.deque()
        # counters
        self.connections = 0
        self.hosts: list[str] = []
        self.sessions = 0
        self.requests: list[SsmlRequest] = []
        self.voice_list_requests = 0
        self.blocks_sent = 0
        self.last_block_at: float | None = None
        self.block_times: list[list[float]] = []  # per session, loop time of each block
        self.mp3_sent: list[bytes] = []  # per session, what actually went out
        # control
        self._pause_after: int | None = None
        self._resume = asyncio.Event()
        self._closing = asyncio.Event()
        self._sockets: set[web.WebSocketResponse] = set()
        self._mp3_cache: dict[tuple[str, float], bytes] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> FakeEdge:
        app = web.Application()
        app.router.add_get("/edge/v1", self._websocket)
        app.router.add_get("/voices/list", self._voices)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._closing.set()
        self._resume.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeEdge:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """What to put in edge_tts.communicate.WSS_URL."""
        return f"ws://{self.base_url}/edge/v1?TrustedClientToken=fake"

    @property
    def voice_list_url(self) -> str:
        """What to put in edge_tts.voices.VOICE_LIST."""
        return f"http://{self.base_url}/voices/list?trustedclienttoken=fake"

    def patch(self, monkeypatch: Any) -> None:
        """Point the unmodified edge_tts at this server; reset its global clock skew and
        remove proxy variables so nothing leaves the machine."""
        import edge_tts.communicate
        import edge_tts.drm
        import edge_tts.voices

        monkeypatch.setattr(edge_tts.communicate, "WSS_URL", self.ws_url)
        monkeypatch.setattr(edge_tts.voices, "VOICE_LIST", self.voice_list_url)
        monkeypatch.setattr(edge_tts.drm.DRM, "clock_skew_seconds", 0.0)
        for name in ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.upper(), raising=False)

    # --- knobs -----------------------------------------------------------------

    def queue(self, *modes: str) -> None:
        """Use these modes for the next connections, one each, then `mode` again."""
        for m in modes:
            _check_mode(m)
        self._queued.extend(modes)

    def pause_after_block(self, n: int) -> None:
        """Hold every stream after its n-th block until `resume()`."""
        self._pause_after = n
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def last_request(self) -> SsmlRequest:
        return self.requests[-1]

    def audio_for(self, text: str) -> bytes:
        """The MP3 spoken for `text`: one tone per word (cached)."""
        key = (text, self.word_seconds)
        if key not in self._mp3_cache:
            words = max(1, len(text.split()))
            freq = 150.0 + (sum(map(ord, text)) % 200)
            self._mp3_cache[key] = tone_mp3(0.1 + self.word_seconds * words, freq)
        return self._mp3_cache[key]

    # --- HTTP ------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self.clock_skew

    def _token_ok(self, token: str) -> bool:
        from edge_tts.drm import generate_sec_ms_gec_v2

        now = self._now()
        # A token made just before a 5-minute boundary is still good just after it.
        return token in (generate_sec_ms_gec_v2(now), generate_sec_ms_gec_v2(now - 5))

    def _refuse(self, status: int) -> web.Response:
        headers = {"Date": formatdate(self._now(), usegmt=True)}
        if status == 429:
            headers["Retry-After"] = "1"
        return web.Response(status=status, headers=headers)

    async def _voices(self, request: web.Request) -> web.StreamResponse:
        self.voice_list_requests += 1
        token_ok = self._token_ok(request.query.get("Sec-MS-GEC", ""))
        if self.voice_list_mode == "forbidden" or not token_ok:
            return self._refuse(403)
        if self.voice_list_mode == "503":
            return self._refuse(503)
        if self.voice_list_mode == "stall":
            await self._closing.wait()
        return web.json_response(self.voice_list)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        self.hosts.append(request.host)
        mode = self._queued.popleft() if self._queued else self.mode
        _check_mode(mode)
        if mode == "forbidden" or not self._token_ok(request.query.get("Sec-MS-GEC", "")):
            return self._refuse(403)
        if mode in ("429", "503"):
            return self._refuse(int(mode))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sessions += 1
        self._sockets.add(ws)
        try:
            await self._session(ws, request, mode)
        finally:
            self._sockets.discard(ws)
        return ws

    async def _session(self, ws: web.WebSocketResponse, request: web.Request, mode: str) -> None:
        word_boundaries = False
        ssml_request: SsmlRequest | None = None
        while ssml_request is None:
            msg = await ws.receive()
            if msg.type != WSMsgType.TEXT:
                return
            if "Path:speech.config" in msg.data:
                word_boundaries = '"wordBoundaryEnabled":"true"' in msg.data
            elif "Path:ssml" in msg.data:
                ssml_request = self._parse_ssml(msg.data, word_boundaries)
        self.requests.append(ssml_request)
        request_id = uuid.uuid4().hex
        await ws.send_str(_text_message(request_id, "turn.start", "{}"))
        known = {v["ShortName"] for v in self.voice_list}
        if mode == "no_audio" or ssml_request.voice not in known:
            await ws.send_str(_text_message(request_id, "turn.end", "{}"))
            return
        if mode == "stall_before_audio":
            await self._closing.wait()
            return
        await self._stream_audio(ws, request, request_id, ssml_request, mode)

    async def _stream_audio(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        request_id: str,
        req: SsmlRequest,
        mode: str,
    ) -> None:
        mp3 = self.audio_for(req.text)
        blocks = [mp3[i : i + self.block_bytes] for i in range(0, len(mp3), self.block_bytes)]
        words = list(_words(req.text)) if req.word_boundaries else []
        bytes_per_second = BITRATE_KBPS * 1000 / 8
        sent = bytearray()
        self.mp3_sent.append(b"")
        self.block_times.append([])
        if self.first_audio_delay:
            await asyncio.sleep(self.first_audio_delay)
        for index, block in enumerate(blocks):
            if index and self.pace:
                await asyncio.sleep(self.pace)
            if index == self.blocks_before_fault and mode in (
                "stall_after_audio", "close_mid_stream", "drop_mid_stream"
            ):
                await self._fault(ws, request, mode)
                return
            if self._pause_after is not None and index == self._pause_after:
                await self._resume.wait()
            # Word metadata goes out just before the audio it describes, as Edge does.
            block_end = (len(sent) + len(block)) / bytes_per_second
            while words and words[0][1] * self.word_seconds + 0.05 < block_end:
                await ws.send_str(self._word_message(request_id, words.pop(0)))
            await ws.send_bytes(_audio_message(request_id, block))
            sent += block
            self.mp3_sent[-1] = bytes(sent)
            self.blocks_sent += 1
            self.last_block_at = asyncio.get_running_loop().time()
            self.block_times[-1].append(self.last_block_at)
        for word in words:
            await ws.send_str(self._word_message(request_id, word))
        await ws.send_bytes(_audio_message(request_id, b""))  # the service's end marker
        await ws.send_str(_text_message(request_id, "turn.end", "{}"))

    async def _fault(self, ws: web.WebSocketResponse, request: web.Request, mode: str) -> None:
        if mode == "stall_after_audio":
            await self._closing.wait()
        elif mode == "close_mid_stream":
            await ws.close()
        elif request.transport is not None:  # drop: TCP goes away without a close frame
            request.transport.abort()

    def _word_message(self, request_id: str, word: tuple[str, int]) -> str:
        text, index = word
        offset = int((0.05 + index * self.word_seconds) * TICKS_PER_SECOND)
        duration = int(self.word_seconds * 0.8 * TICKS_PER_SECOND)
        body = {
            "Metadata": [{
                "Type": "WordBoundary",
                "Data": {
                    "Offset": offset,
                    "Duration": duration,
                    "text": {"Text": text, "Length": len(text), "BoundaryType": "WordBoundary"},
                },
            }]
        }
        return _text_message(request_id, "audio.metadata", json.dumps(body))

    @staticmethod
    def _parse_ssml(message: str, word_boundaries: bool) -> SsmlRequest:
        match = _SSML.search(message)
        if match is None:
            raise ValueError(f"fake Edge cannot parse SSML: {message[:200]!r}")
        return SsmlRequest(
            voice=f"{match['loc']}-{match['name']}",
            text=html.unescape(match["text"]),
            rate=match["rate"],
            volume=match["volume"],
            pitch=match["pitch"],
            word_boundaries=word_boundaries,
        )


def _words(text: str) -> list[tuple[str, int]]:
    """Words as Edge reports them: punctuation is not part of a word."""
    words = re.findall(r"\w[\w'’-]*", text)
    return [(w, i) for i, w in enumerate(words)]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown fake Edge mode {mode!r}; choose from {', '.join(MODES)}")


def mp3_seconds(mp3: bytes) -> float:
    """Duration of CBR 48 kbit/s MP3 bytes."""
    return len(mp3) * 8 / (BITRATE_KBPS * 1000)


__all__ = [
    "DEFAULT_VOICES", "FakeEdge", "MODES", "SsmlRequest", "encode_mp3", "mp3_seconds", "tone_mp3",
]
