"""One sentence: frames from the generator -> streaming Mimi decode -> int16 PCM chunks.

Chunk schedule (frames per decode/yield): 2, 2, then 4. The first audio leaves after two
frames (160 ms of audio), and every later chunk is ready before the audio already sent has
played out as long as generation runs faster than ~0.67x real time; smaller first chunks
risk an audible gap on a GPU at RTF 0.3-0.5. Codes are never decoded independently: one
stateful decoder per sentence, so the stream equals a one-shot decode of the same codes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ...pcm import float_to_int16
from .generator import DEFAULT_SAMPLING, CsmGenerator, Sampling, Segment
from .mimi_stream import MimiStreamDecoder
from .stopping import StopRules, StopState

FRAME_SAMPLES = 1920  # 80 ms at 24 kHz
CHUNK_SCHEDULE = (2, 2, 4)  # frames per chunk; the last size repeats
FADE_S = 0.005  # fade-out where a stop rule cuts: a few ms, no click, no audible ramp
FADE_SAMPLES = round(FADE_S * 24000)


def chunk_sizes(schedule: Sequence[int] = CHUNK_SCHEDULE) -> Iterator[int]:
    yield from schedule
    while True:
        yield schedule[-1]


def to_int16(audio: torch.Tensor | np.ndarray) -> bytes:
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    return float_to_int16(audio).tobytes()


def finish(audio: torch.Tensor, levels: Sequence[float], stop: StopState) -> np.ndarray:
    """The sentence's last chunk: trailing near-silent frames (after speech) dropped, and a
    fade-out where a rule cut the model off."""
    samples = audio.detach().float().cpu().numpy().copy()
    keep = len(levels)
    while keep and stop.heard_speech and levels[keep - 1] < stop.rules.silence_rms:
        keep -= 1
    samples = samples[: keep * FRAME_SAMPLES]
    if stop.cut and samples.size:
        n = min(FADE_SAMPLES, samples.size)
        samples[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return samples


def stream_sentence(
    gen: CsmGenerator,
    text: str,
    speaker: int,
    rules: StopRules | StopState,
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
    are appended to `codes_out` for the next sentence's context. Pass a StopState instead
    of StopRules to read afterwards why and how the sentence ended."""
    stop = rules if isinstance(rules, StopState) else StopState(rules)
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
            last = stop.reason is not None  # the frame that tripped a rule
            if len(pending) < want and not last:
                continue
            audio, levels = _decode(decoder, pending, stop)
            pending, want = [], next(sizes)
            if stop.reason is None:
                yield to_int16(audio)
                continue
            if tail := to_int16(finish(audio, levels, stop)):
                yield tail
            return
        if pending:  # frames() ended without a rule (it returns after the end frame)
            audio, levels = _decode(decoder, pending, stop)
            if tail := to_int16(finish(audio, levels, stop)):
                yield tail
    finally:
        frames.close()


def _decode(decoder: MimiStreamDecoder, pending: list[torch.Tensor],
            stop: StopState) -> tuple[torch.Tensor, list[float]]:
    """Decode and feed the silence rule; once it fires, the rest of the chunk is dropped."""
    audio = decoder.decode(torch.stack(pending))
    levels = audio.float().view(-1, FRAME_SAMPLES).pow(2).mean(dim=1).sqrt().tolist()
    for i, rms in enumerate(levels):
        if stop.on_level(rms):
            levels = levels[: i + 1]
            return audio[: (i + 1) * FRAME_SAMPLES], levels
    return audio, levels
