"""Incremental MP3 → 16-bit PCM decoding on PyAV.

Edge sends MP3 in blocks that end anywhere, even inside a frame. PyAV's `mp3` parser
buffers the partial frame and hands out each frame as soon as its last byte arrives,
so PCM leaves within a block of its MP3 arriving instead of after the whole sentence."""

from __future__ import annotations

import av
import numpy as np

from ...pcm import Pcm, float_to_int16


class Mp3DecodeError(ValueError):
    """The bytes are not decodable MP3."""


class Mp3Decoder:
    """Feed MP3 bytes in any block sizes; get PCM (mono int16 at the stream's own rate).

    One decoder per stream: the MP3 bit reservoir lets a frame borrow bytes from the
    frames before it, so a decoder must see the stream from its first frame."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("mp3", "r")
        self.bytes_in = 0
        self.samples_out = 0
        self.rate: int | None = None

    def feed(self, data: bytes) -> list[Pcm]:
        """Decode what `data` completes. Usually one Pcm; more only if the rate changes."""
        if not data:
            return []
        self.bytes_in += len(data)
        try:
            packets = self._codec.parse(data)
            return self._decode(packets)
        except av.error.FFmpegError as exc:
            raise Mp3DecodeError(f"undecodable MP3: {exc}") from exc

    def flush(self) -> list[Pcm]:
        """Drain the parser's last partial frame and the decoder (end of the stream)."""
        try:
            out = self._decode(self._codec.parse(None))
            out += self._decode([None])
        except av.error.FFmpegError as exc:
            raise Mp3DecodeError(f"undecodable MP3 at the end: {exc}") from exc
        return out

    def _decode(self, packets: list) -> list[Pcm]:
        blocks: list[tuple[int, list[np.ndarray]]] = []
        for packet in packets:
            for frame in self._codec.decode(packet):
                rate = frame.sample_rate
                if not blocks or blocks[-1][0] != rate:
                    blocks.append((rate, []))
                blocks[-1][1].append(_to_mono_int16(frame))
        out = []
        for rate, arrays in blocks:
            samples = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
            self.rate = rate
            self.samples_out += len(samples)
            out.append(Pcm(samples.astype("<i2", copy=False).tobytes(), rate))
        return out


def _to_mono_int16(frame: av.AudioFrame) -> np.ndarray:
    """FFmpeg's mp3 decoder gives s16p here (fltp in some builds); always return int16 mono."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: channels interleaved in one row
        array = array.reshape(-1, channels).T
    if np.issubdtype(array.dtype, np.floating):
        mono = array.mean(axis=0) if channels > 1 else array[0]
        return float_to_int16(mono)
    if channels > 1:
        return array.astype(np.int32).mean(axis=0).round().astype(np.int16)
    return array[0].astype(np.int16, copy=False)


def decode_all(mp3: bytes) -> Pcm:
    """One-shot decode (tests, tools). Same decoder, one block."""
    decoder = Mp3Decoder()
    blocks = decoder.feed(mp3) + decoder.flush()
    if not blocks:
        return Pcm(b"", 24000)
    return Pcm(b"".join(b.audio for b in blocks), blocks[0].rate)
