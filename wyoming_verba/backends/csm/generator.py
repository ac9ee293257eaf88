"""CSM's frame loop, owned here instead of `generate()` so audio can stream out.

One frame = backbone hidden state -> codebook 0 -> 31 depth-decoder steps -> the frame's
32 codes embedded and fed back through one backbone step; `frame_step.FrameStep` runs all
of it as one function over static caches (compiled as one graph, CUDA-graphed on a GPU).
The prompt is laid out exactly as transformers' CSM chat template does it: per turn
`<bos>[speaker]text<eos>` followed, for turns with audio, by the audio frames and an
all-zero end frame.

The host never waits for the frame it just launched: frame k's codes come back through a
non-blocking copy while frame k+1 runs, and the end-frame test reads them then.

The voice prompt (reference clip + transcript) is prefilled once per voice; its KV tensors
are kept and copied into the static cache at the start of every sentence, so only the
per-reply context and the new sentence are prefilled each time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .frame_step import CODEBOOK_SIZE, NUM_CODEBOOKS, FrameStep, Sampling, compile_step
from .frame_step import sample_codes as sample_codes
from .stopping import StopState

_LOGGER = logging.getLogger(__name__)

__all__ = ["CODEBOOK_SIZE", "NUM_CODEBOOKS", "MODES", "Sampling", "Segment", "CsmGenerator",
           "Cancelled", "DEFAULT_SAMPLING"]

MODES = ("eager", "compiled")
PREFIX_CACHE_SIZE = 8  # voice prompts whose KV prefix is kept

Prefix = tuple[Any, int]  # ((keys, values) | None, tokens)


@dataclass(frozen=True)
class Segment:
    """One turn: a speaker's text and (for context turns) its audio codes (frames, 32)."""

    speaker: int
    text: str
    codes: torch.Tensor | None = None


DEFAULT_SAMPLING = Sampling()


class Cancelled(Exception):
    """The frame loop saw a cancellation request."""


class CsmGenerator:
    """Frame-by-frame CSM generation on one model. Not thread-safe: one caller at a time.

    mode "eager" runs the frame step as plain PyTorch; "compiled" compiles it with
    `fullgraph=True` (and CUDA graphs on CUDA) on first use, once per sampling setting."""

    def __init__(self, model: Any, tokenizer: Any, mode: str = "eager") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.mode = mode
        self.device = next(model.parameters()).device
        self.max_positions = int(model.config.max_position_embeddings)
        self.bos_id = self._special_id(tokenizer.bos_token_id, "<|begin_of_text|>")
        self.eos_id = self._special_id(tokenizer.eos_token_id, "<|end_of_text|>")
        self._prefixes: OrderedDict[Any, Prefix] = OrderedDict()
        with torch.inference_mode():  # caches allocated eagerly, before any compiled call
            self.step = FrameStep(model)
        self._steps: dict[Sampling, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {}
        self._hidden: torch.Tensor | None = None
        self._host = [torch.empty(NUM_CODEBOOKS, dtype=torch.long,
                                  pin_memory=self.device.type == "cuda") for _ in range(2)]
        self._host_turn = 0

    def _special_id(self, value: int | None, token: str) -> int:
        if value is not None:
            return int(value)
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None:
            raise ValueError(f"tokenizer has no {token}")
        return int(found)

    def _frame_fn(self, sampling: Sampling) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
        fn = self._steps.get(sampling)
        if fn is None:
            step = self.step

            def frame(hidden: torch.Tensor, position: torch.Tensor,
                      noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                return step.frame(hidden, position, noise, sampling)

            fn = frame
            if self.mode == "compiled":
                fn = compile_step(frame, cuda_graphs=self.device.type == "cuda")
            self._steps[sampling] = fn
        return fn

    # --- prompt -------------------------------------------------------------------

    def text_ids(self, speaker: int, text: str) -> torch.Tensor:
        ids = self.tokenizer.encode(f"[{speaker}]{text}", add_special_tokens=False)
        return torch.tensor([self.bos_id, *ids, self.eos_id], device=self.device)

    def segment_length(self, segment: Segment) -> int:
        frames = 0 if segment.codes is None else segment.codes.shape[0] + 1
        return len(self.text_ids(segment.speaker, segment.text)) + frames

    @torch.inference_mode()
    def embed(self, segments: Sequence[Segment]) -> torch.Tensor:
        """(1, tokens, hidden) input embeddings for these turns."""
        parts = []
        for seg in segments:
            parts.append(self.model.embed_text_tokens(self.text_ids(seg.speaker, seg.text))[None])
            if seg.codes is not None:
                codes = seg.codes.to(self.device)
                end = torch.zeros(1, NUM_CODEBOOKS, dtype=codes.dtype, device=self.device)
                parts.append(self.model.backbone_model.embed_tokens(torch.cat([codes, end])[None]))
        return torch.cat(parts, dim=1)

    # --- KV prefix of a voice prompt ------------------------------------------------

    @torch.inference_mode()
    def prefix(self, key: Any, segments: Sequence[Segment]) -> Prefix:
        """The KV tensors of a voice prompt, computed once per key."""
        if not segments:
            return None, 0
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            return self._prefixes[key]
        embeds = self.embed(segments)
        self.step.prefill(embeds, 0)
        entry = (self.step.save_prefix(embeds.shape[1]), embeds.shape[1])
        self._prefixes[key] = entry
        while len(self._prefixes) > PREFIX_CACHE_SIZE:
            self._prefixes.popitem(last=False)
        _LOGGER.debug("voice prompt %s: %d tokens prefilled", key, embeds.shape[1])
        return entry

    def budget(self, prefix_len: int, context: Sequence[Segment], text_len: int,
               max_frames: int) -> tuple[list[Segment], int]:
        """Drop the oldest context turns (then frames) until everything fits the model."""
        context = list(context)
        free = self.max_positions - prefix_len - text_len
        while context and free - sum(self.segment_length(s) for s in context) < max_frames:
            context.pop(0)
        frames = min(max_frames, free - sum(self.segment_length(s) for s in context) - 1)
        return context, frames

    @torch.inference_mode()
    def prefill(self, prefix: Prefix, segments: Sequence[Segment]) -> int:
        """Voice prefix into the cache, then these turns after it: the next position."""
        start = self.step.load_prefix(prefix[0])
        embeds = self.embed(segments)
        self._hidden = self.step.prefill(embeds, start)
        return start + embeds.shape[1]

    # --- one frame --------------------------------------------------------------------

    def sample(self, logits: torch.Tensor, sampling: Sampling,
               generator: torch.Generator | None) -> torch.Tensor:
        """(1, vocab) logits -> (1,) code, specials suppressed (outside the graph)."""
        noise = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
        return sample_codes(logits, noise.exponential_(1, generator=generator), sampling)

    @torch.inference_mode()
    def next_frame(self, position: int, sampling: Sampling,
                   generator: torch.Generator | None) -> torch.Tensor:
        """Launch one frame at this backbone position; its (32,) codes on the device.
        Nothing here waits for the device."""
        assert self._hidden is not None, "prefill() first"
        noise = self.step.noise(generator) if sampling.temperature > 0 else self._greedy_noise()
        frame, self._hidden = self._frame_fn(sampling)(
            self._hidden, self.step.positions[position:position + 1], noise)
        return frame[0]

    def _greedy_noise(self) -> torch.Tensor:
        noise = getattr(self, "_ones", None)
        if noise is None:
            noise = self._ones = torch.ones(NUM_CODEBOOKS, self.step.vocab, device=self.device)
        return noise

    def _to_host(self, frame: torch.Tensor) -> Callable[[], list[int]]:
        """Start copying a frame to the host; the returned call waits for it."""
        if frame.device.type != "cuda":
            return frame.tolist
        host = self._host[self._host_turn]
        self._host_turn ^= 1  # two buffers: one being read, one being filled
        host.copy_(frame, non_blocking=True)
        done = torch.cuda.Event()
        done.record()

        def read() -> list[int]:
            done.synchronize()
            return host.tolist()

        return read

    # --- the loop -------------------------------------------------------------------

    def frames(
        self,
        text: str,
        speaker: int,
        stop: StopState,
        *,
        prefix: Prefix = (None, 0),
        context: Sequence[Segment] = (),
        sampling: Sampling = DEFAULT_SAMPLING,
        seed: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Generator[torch.Tensor, None, None]:
        """Yield (32,) code frames until a stop rule fires. The end frame is not yielded.
        Raises Cancelled when `should_stop()` turns true (checked every frame; the one
        frame already in flight then is dropped)."""
        _, prefix_len = prefix
        target = Segment(speaker, text)
        text_len = self.segment_length(target)
        context, max_frames = self.budget(prefix_len, context, text_len, stop.rules.max_frames)
        if max_frames < 1:
            raise ValueError("voice prompt and text do not fit the model's context")
        stop.rules.max_frames = max_frames
        generator = self._generator(seed)
        position = self.prefill(prefix, [*context, target])
        launched = 0
        pending: tuple[torch.Tensor, Callable[[], list[int]]] | None = None
        while True:
            if should_stop():
                raise Cancelled()
            current = None
            if launched < max_frames:  # the cap is known: never launch past it
                frame = self.next_frame(position + launched, sampling, generator)
                launched += 1
                current = (frame, self._to_host(frame))
            if pending is not None:  # the previous frame, read while this one runs
                previous, read = pending
                if stop.on_frame(read()):
                    if stop.reason != "end":
                        yield previous
                    return
                yield previous
            if current is None:
                return
            pending = current

    def _generator(self, seed: int | None) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator

