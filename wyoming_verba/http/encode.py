"""The stream's 16-bit PCM → what an HTTP client asked for (OpenAI's `response_format`):
raw `pcm`, `wav` with a streaming header, or `mp3`, `opus` (Ogg), `aac` (ADTS) and `flac`
encoded with PyAV as the audio arrives, each piece of output as soon as the muxer has it."""

from __future__ import annotations

import struct
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream

from ..audio import AudioFormat

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {
    "mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
    "wav": "audio/wav", "pcm": "audio/pcm",
}
# response_format → (container, codec, bit rate, container options). Ogg's default page
# duration of one second would hold the first audio back for that long.
_CODECS: dict[str, tuple[str, str, int | None, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", 64_000, {}),
    "opus": ("ogg", "libopus", 32_000, {"page_duration": "20000"}),
    "aac": ("adts", "aac", 64_000, {}),
    "flac": ("flac", "flac", None, {}),
}
UNKNOWN_SIZE = 0xFFFFFFFF  # RIFF/data sizes of a WAV whose length is not known yet


class Encoder:
    """Raw PCM, unchanged. `cpu_bound` says whether `encode` does enough work to be run
    off the event loop."""

    cpu_bound = False

    def __init__(self, fmt: AudioFormat) -> None:
        self.fmt = fmt

    def open(self) -> bytes:
        """Get ready; what a container writes before any audio."""
        return b""

    def encode(self, pcm: bytes) -> bytes:
        return pcm

    def finish(self) -> bytes:
        return b""


class WavEncoder(Encoder):
    """A WAV header with unknown sizes (as streaming servers send it), then the PCM."""

    def __init__(self, fmt: AudioFormat) -> None:
        super().__init__(fmt)
        self._header_sent = False

    def header(self) -> bytes:
        fmt = self.fmt
        return (b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVE"
                + b"fmt " + struct.pack("<IHHIIHH", 16, 1, fmt.channels, fmt.rate,
                                        fmt.bytes_per_second, fmt.width * fmt.channels,
                                        fmt.width * 8)
                + b"data" + struct.pack("<I", UNKNOWN_SIZE))

    def encode(self, pcm: bytes) -> bytes:
        if self._header_sent:
            return pcm
        self._header_sent = True
        return self.header() + pcm

    def finish(self) -> bytes:
        return self.encode(b"")  # an empty reply is still a valid WAV


class _Sink:
    """A write-only, unseekable file for the muxer: what it wrote since the last `take`.
    Unseekable, so no muxer waits for the end to go back and patch a header."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class AvEncoder(Encoder):
    """mp3, opus, aac or flac through PyAV, fed block by block. Not thread-safe: one
    caller at a time (the response's writer)."""

    cpu_bound = True

    def __init__(self, fmt: AudioFormat, response_format: str) -> None:
        super().__init__(fmt)
        container, codec, bit_rate, options = _CODECS[response_format]
        self._sink = _Sink()
        self._container = av.open(self._sink, "w", format=container, options=options)
        self._stream = cast(AudioStream, self._container.add_stream(
            codec, rate=_codec_rate(codec, fmt.rate), layout="mono"))
        if bit_rate:
            self._stream.bit_rate = bit_rate
        # Frames in the codec's own sample format (mono: s16 and s16p are the same
        # bytes), so PyAV's resampler is only needed for another rate or stereo.
        formats = [f.name for f in av.Codec(codec, "w").audio_formats or []]
        self._sample_format = next((f for f in ("s16", "s16p", "fltp", "flt") if f in formats),
                                   "s16")
        self._stream.format = self._sample_format
        self._layout = "mono" if fmt.channels == 1 else "stereo"
        self._finished = False

    def open(self) -> bytes:
        """Open the codec and write the container's header (a few milliseconds, done
        while the first sentence is still being synthesized)."""
        self._container.start_encoding()
        return self._sink.take()

    def encode(self, pcm: bytes) -> bytes:
        usable = len(pcm) - len(pcm) % (self.fmt.width * self.fmt.channels)
        if usable:
            samples = np.frombuffer(pcm[:usable], dtype="<i2").reshape(1, -1)
            layout, frame_format = self._layout, "s16"
            if layout == "mono" and self._sample_format != "s16":
                frame_format = self._sample_format
                if frame_format.startswith("flt"):
                    samples = samples.astype(np.float32) / 32768.0
            frame = av.AudioFrame.from_ndarray(samples, format=frame_format, layout=layout)
            frame.sample_rate = self.fmt.rate
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        if not self._finished:
            self._finished = True
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        return self._sink.take()


def _codec_rate(codec: str, rate: int) -> int:
    """`rate` if the codec takes it, else the nearest rate above it (or its highest)."""
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    above = [r for r in rates if r > rate]
    return min(above) if above else max(rates)


def encoder_for(response_format: str, fmt: AudioFormat) -> Encoder:
    if response_format == "pcm":
        return Encoder(fmt)
    if response_format == "wav":
        return WavEncoder(fmt)
    return AvEncoder(fmt, response_format)
