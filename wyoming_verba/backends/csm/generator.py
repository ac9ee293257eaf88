"""CSM's frame loop, owned here instead of `generate()` so audio can stream out.

One frame = backbone step (-> codebook 0) + 31 depth-decoder steps (-> codebooks 1..31);
the frame's 32 codes are embedded and fed back to the backbone. The prompt is laid out
exactly as transformers' CSM chat template does it: per turn
`<bos>[speaker]text<eos>` followed, for turns with audio, by the audio frames and an
all-zero end frame.

The voice prompt (reference clip + transcript) is prefilled once per voice; its KV tensors
are kept and copied into the working cache at the start of every sentence, so only the
per-reply context and the new sentence are prefilled each time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from .stopping import StopState

_LOGGER = logging.getLogger(__name__)

NUM_CODEBOOKS = 32
CODEBOOK_SIZE = 2048  # ids 2048..2050 are specials: Mimi cannot decode them
MODES = ("eager", "static", "compiled")
PREFIX_CACHE_SIZE = 8  # voice prompts whose KV prefix is kept


@dataclass(frozen=True)
class Segment:
    """One turn: a speaker's text and (for context turns) its audio codes (frames, 32)."""

    speaker: int
    text: str
    codes: torch.Tensor | None = None


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.9
    top_k: int = 50


DEFAULT_SAMPLING = Sampling()


class Cancelled(Exception):
    """The frame loop saw a cancellation request."""


class CsmGenerator:
    """Frame-by-frame CSM generation on one model. Not thread-safe: one caller at a time."""

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
        from .compat import cache_keyword

        # `cache=` on 5.24+, `past_key_values=` before: an unknown name is silently dropped.
        self._bb_kw = cache_keyword(type(model.backbone_model).forward)
        self._dd_kw = cache_keyword(type(model.depth_decoder).forward)
        self._prefixes: OrderedDict[Any, tuple[list[tuple[torch.Tensor, torch.Tensor]], int]]
        self._prefixes = OrderedDict()
        self._backbone_cache: Any = None
        self._depth_cache: Any = None
        self._backbone_step: Callable[..., torch.Tensor] = self._backbone_forward
        self._depth_step: Callable[..., torch.Tensor] = self._depth_forward
        if mode != "eager":
            from transformers.cache_utils import StaticCache

            self._backbone_cache = StaticCache(
                config=model.config, max_cache_len=self.max_positions
            )
            self._depth_cache = StaticCache(
                config=model.depth_decoder.config, max_cache_len=NUM_CODEBOOKS + 1
            )
        if mode == "compiled":
            # Decode steps have fixed shapes with static caches: CUDA graphs pay off there.
            self._backbone_step = _graphed(self._backbone_forward)
            self._depth_step = _graphed(self._depth_forward)

    def _special_id(self, value: int | None, token: str) -> int:
        if value is not None:
            return int(value)
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None:
            raise ValueError(f"tokenizer has no {token}")
        return int(found)

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
    def prefix(self, key: Any, segments: Sequence[Segment]) -> tuple[Any, int]:
        """The KV tensors of a voice prompt, computed once per key."""
        if not segments:
            return None, 0
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            return self._prefixes[key]
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache()
        embeds = self.embed(segments)
        self.model.backbone_model(inputs_embeds=embeds, use_cache=True, **{self._bb_kw: cache})
        kv = [(layer.keys, layer.values) for layer in cast(list[Any], cache.layers)]
        entry = (kv, embeds.shape[1])
        self._prefixes[key] = entry
        while len(self._prefixes) > PREFIX_CACHE_SIZE:
            self._prefixes.popitem(last=False)
        _LOGGER.debug("voice prompt %s: %d tokens prefilled", key, embeds.shape[1])
        return entry

    def _working_cache(self, kv: list[tuple[torch.Tensor, torch.Tensor]] | None) -> Any:
        if self.mode == "eager":
            from transformers.cache_utils import DynamicCache

            return DynamicCache(ddp_cache_data=kv) if kv else DynamicCache()
        cache = self._backbone_cache
        cache.reset()
        for layer, (k, v) in zip(cache.layers, kv or (), strict=False):
            layer.update(k, v)  # copies into the static buffers
        return cache

    def budget(self, prefix_len: int, context: Sequence[Segment], text_len: int,
               max_frames: int) -> tuple[list[Segment], int]:
        """Drop the oldest context turns (then frames) until everything fits the model."""
        context = list(context)
        free = self.max_positions - prefix_len - text_len
        while context and free - sum(self.segment_length(s) for s in context) < max_frames:
            context.pop(0)
        frames = min(max_frames, free - sum(self.segment_length(s) for s in context) - 1)
        return context, frames

    # --- steps ----------------------------------------------------------------------

    def _backbone_forward(self, embeds: torch.Tensor, cache: Any) -> torch.Tensor:
        out = self.model.backbone_model(inputs_embeds=embeds, use_cache=True,
                                        **{self._bb_kw: cache})
        return out.last_hidden_state[:, -1]

    def _depth_forward(self, ids: torch.Tensor, hidden: torch.Tensor | None,
                       cache: Any) -> torch.Tensor:
        out = self.model.depth_decoder(
            input_ids=ids, backbone_last_hidden_state=hidden, use_cache=True, logits_to_keep=1,
            **{self._dd_kw: cache},
        )
        return out.logits[:, -1]

    def _depth_cache_for_frame(self) -> Any:
        if self._depth_cache is None:
            from transformers.cache_utils import DynamicCache

            return DynamicCache()
        self._depth_cache.reset()
        return self._depth_cache

    def sample(self, logits: torch.Tensor, sampling: Sampling,
               generator: torch.Generator | None) -> torch.Tensor:
        """(1, vocab) logits -> (1,) code. Specials suppressed; exponential-race sampling
        (argmax of p/Exp(1)) avoids a device sync per codebook."""
        logits = logits.float()
        logits[..., CODEBOOK_SIZE:] = float("-inf")
        if sampling.temperature <= 0:
            return logits.argmax(dim=-1)
        logits = logits / sampling.temperature
        if 0 < sampling.top_k < logits.shape[-1]:
            kth = torch.topk(logits, sampling.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        noise = torch.empty_like(probs).exponential_(1, generator=generator)
        return (probs / noise).argmax(dim=-1)

    @torch.inference_mode()
    def next_frame(self, hidden: torch.Tensor, sampling: Sampling,
                   generator: torch.Generator | None) -> torch.Tensor:
        """Codebook 0 from the backbone's last hidden state, then the depth decoder."""
        c0 = self.sample(self.model.lm_head(hidden), sampling, generator)
        cache = self._depth_cache_for_frame()
        ids = torch.stack([torch.zeros_like(c0), c0], dim=-1)
        codes = [c0]
        logits = self._depth_step(ids, hidden, cache)
        for _ in range(1, NUM_CODEBOOKS):
            code = self.sample(logits, sampling, generator)
            codes.append(code)
            if len(codes) < NUM_CODEBOOKS:
                logits = self._depth_step(code[:, None], None, cache)
        return torch.stack(codes, dim=-1)[0]  # (32,)

    # --- the loop -------------------------------------------------------------------

    def frames(
        self,
        text: str,
        speaker: int,
        stop: StopState,
        *,
        prefix: tuple[Any, int] = (None, 0),
        context: Sequence[Segment] = (),
        sampling: Sampling = DEFAULT_SAMPLING,
        seed: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Generator[torch.Tensor, None, None]:
        """Yield (32,) code frames until a stop rule fires. The end frame is not yielded.
        Raises Cancelled when `should_stop()` turns true (checked every frame)."""
        kv, prefix_len = prefix
        target = Segment(speaker, text)
        text_len = self.segment_length(target)
        context, max_frames = self.budget(prefix_len, context, text_len, stop.rules.max_frames)
        if max_frames < 1:
            raise ValueError("voice prompt and text do not fit the model's context")
        stop.rules.max_frames = max_frames
        generator = self._generator(seed)
        cache = self._working_cache(kv)
        with torch.inference_mode():
            hidden = self._backbone_forward(self.embed([*context, target]), cache)  # prefill
        while True:
            if should_stop():
                raise Cancelled()
            frame = self.next_frame(hidden, sampling, generator)
            if stop.on_frame(frame.tolist()):
                if stop.reason != "end":
                    yield frame
                return
            yield frame
            with torch.inference_mode():
                embeds = self.model.backbone_model.embed_tokens(frame.view(1, 1, -1))
                hidden = self._backbone_step(embeds, cache)

    def _generator(self, seed: int | None) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator


def _graphed(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """torch.compile with CUDA graphs. Graph outputs live in memory the next replay
    overwrites, so each result is copied out (a few KB) before the next step runs."""
    compiled = torch.compile(fn, mode="reduce-overhead", dynamic=False)

    def step(*args: Any) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*args).clone()

    return step
