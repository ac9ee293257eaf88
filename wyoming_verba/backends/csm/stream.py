"""One sentence: frames from the generator -> streaming Mimi decode -> int16 PCM chunks.

Chunk schedule (frames per decode/yield): 2, 2, then 4. The first audio leaves after two
frames (160 ms of audio), and every later chunk is ready before the audio already sent has
played out as long as generation runs faster than ~0.67x real time; smaller first chunks
risk an audible gap on a GPU at RTF 0.3-0.5. Codes are never decoded independently: one
stateful decoder per sentence, so the stream equals a one-shot decode of the same codes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from ...pcm import float_to_int16
from .generator import DEFAULT_SAMPLING, CsmGenerator, Sampling, Segment
from .mimi_stream import MimiStreamDecoder
from .stopping import StopRules, StopState

FRAME_SAMPLES = 1920  # 80 ms at 24 kHz
CHUNK_SCHEDULE = (2, 2, 4)  # frames per chunk; the last size repeats


def chunk_sizes(schedule: Sequence[int] = CHUNK_SCHEDULE) -> Iterator[int]:
    yield from schedule
    while True:
        yield schedule[-1]


def to_int16(audio: torch.Tensor) -> bytes:
    return float_to_int16(audio.detach().float().cpu().numpy()).tobytes()


def stream_sentence(
    gen: CsmGenerator,
    text: str,
    speaker: int,
    rules: StopRules,
    *,
    prefix: tuple[Any, int] = (None, 0),
    context: Sequence[Segment] = (),
    sampling: Sampling = DEFAULT_SAMPLING,
    seed: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    codes_out: list[torch.Tensor] | None = None,
    schedule: Sequence[int] = CHUNK_SCHEDULE,
) -> Iterator[bytes]:
    """Yield int16 mono 24 kHz PCM as frames are generated. The generated (played) frames
    are appended to `codes_out` for the next sentence's context."""
    stop = StopState(rules)
    decoder = MimiStreamDecoder(gen.model.codec_model)
    sizes = chunk_sizes(schedule)
    want = next(sizes)
    pending: list[torch.Tensor] = []
    frames = gen.frames(text, speaker, stop, prefix=prefix, context=context,
                        sampling=sampling, seed=seed, should_stop=should_stop)
    try:
        for frame in frames:
            pending.append(frame)
            if codes_out is not None:
                codes_out.append(frame)
            if len(pending) < want:
                continue
            audio, silent = _decode(decoder, pending, stop)
            pending, want = [], next(sizes)
            yield to_int16(audio)
            if silent:
                return
        if pending:
            audio, _ = _decode(decoder, pending, stop)
            yield to_int16(audio)
    finally:
        frames.close()


def _decode(decoder: MimiStreamDecoder, pending: list[torch.Tensor],
            stop: StopState) -> tuple[torch.Tensor, bool]:
    audio = decoder.decode(torch.stack(pending))
    levels = audio.float().view(-1, FRAME_SAMPLES).pow(2).mean(dim=1).sqrt().tolist()
    silent = False
    for rms in levels:
        silent = stop.on_level(rms) or silent
    return audio, silent
