"""One CSM frame as one function: codebook 0 from the backbone's hidden state, the depth
decoder's 31 steps, sampling, and the backbone step that feeds the frame back.

It runs transformers' own CSM modules (projections, norms, MLPs, rotary tables) but owns
the attention and the KV caches, so that the whole frame is one static graph:

- caches are plain tensors allocated once, up front (static addresses for CUDA graphs);
- the backbone position is a device tensor (a view of a precomputed `arange`), used
  through `index_copy_` and a mask over the whole cache: fixed shapes, no host sync;
- the 32 depth positions are Python ints, unrolled: no `arange` from a tensor counter;
- sampling is in the graph: Gumbel-style exponential race (argmax of p / E, E ~ Exp(1))
  with the noise drawn before the call, so the graph has no random ops of its own.

Not calling transformers' decoder forwards also means no cache keyword to get wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

NUM_CODEBOOKS = 32
CODEBOOK_SIZE = 2048  # ids 2048..2050 are specials: Mimi cannot decode them


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.9
    top_k: int = 50


def sample_codes(logits: torch.Tensor, noise: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """(B, vocab) logits, (B, vocab) Exp(1) noise -> (B,) codes, specials suppressed."""
    logits = logits.float()
    special = torch.arange(logits.shape[-1], device=logits.device) >= CODEBOOK_SIZE
    logits = logits.masked_fill(special, float("-inf"))
    if sampling.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / sampling.temperature
    if 0 < sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return (probs / noise).argmax(dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class _Stack:
    """A Llama-style decoder stack (transformers' layers) with its own static KV cache."""

    def __init__(self, model: Any, length: int) -> None:
        self.model = model
        self.layers = list(model.layers[: model.config.num_hidden_layers])
        attn = self.layers[0].self_attn
        cfg = model.config
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling
        weight = attn.q_proj.weight
        shape = (len(self.layers), 1, self.kv_heads, length, self.head_dim)
        # Allocated here, outside any compiled call: static addresses for CUDA graphs.
        self.keys = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.values = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        if hasattr(torch, "_dynamo"):
            torch._dynamo.mark_static_address(self.keys)
            torch._dynamo.mark_static_address(self.values)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
                kv_len: int, write: slice | None = None) -> torch.Tensor:
        """x: (1, T, hidden) at `positions` (T,). K/V are written at `write` (a slice of
        Python ints) or, when None, through `index_copy_` at `positions`. Attention runs
        over cache[:kv_len] with `mask` (T, kv_len) bool, or causally when mask is None."""
        cos, sin = self.model.rotary_emb(x, positions[None])
        cos, sin = cos[:, None], sin[:, None]
        groups = self.heads // self.kv_heads
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(1, -1, self.heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(1, -1, self.kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(1, -1, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            if write is None:
                self.keys[i].index_copy_(2, positions, k)
                self.values[i].index_copy_(2, positions, v)
            else:
                self.keys[i][:, :, write] = k
                self.values[i][:, :, write] = v
            keys = self.keys[i][:, :, :kv_len]
            values = self.values[i][:, :, :kv_len]
            if groups > 1:
                keys = keys.repeat_interleave(groups, dim=1)
                values = values.repeat_interleave(groups, dim=1)
            out = F.scaled_dot_product_attention(
                q, keys, values, attn_mask=mask, is_causal=mask is None and q.shape[2] > 1,
                scale=self.scaling)
            x = x + attn.o_proj(out.transpose(1, 2).reshape(1, q.shape[2], -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.model.norm(x)


class FrameStep:
    """Static caches + the frame function for one CSM model. One sentence at a time."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.max_positions = int(model.config.max_position_embeddings)
        self.backbone = _Stack(model.backbone_model, self.max_positions)
        self.depth = _Stack(model.depth_decoder.model, NUM_CODEBOOKS)
        self.device = self.backbone.keys.device
        self.positions = torch.arange(self.max_positions, device=self.device)
        self.vocab = int(model.depth_decoder.config.vocab_size)
        self.heads = model.depth_decoder.codebooks_head.weight  # (31, hidden, vocab)

    # --- outside the graph ------------------------------------------------------------

    def prefill(self, embeds: torch.Tensor, start: int) -> torch.Tensor:
        """Run (1, T, hidden) embeds at positions start.. (eager); the last hidden state."""
        length = embeds.shape[1]
        end = start + length
        positions = self.positions[start:end]
        mask = self.positions[:end][None, :] <= positions[:, None]
        hidden = self.backbone.forward(embeds.to(self.backbone.keys.dtype), positions, mask,
                                       end, write=slice(start, end))
        return hidden[0, -1:]  # (1, H), strides (H, 1) like the frame's own output

    def save_prefix(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.backbone.keys[..., :length, :].clone(),
                self.backbone.values[..., :length, :].clone())

    def load_prefix(self, prefix: tuple[torch.Tensor, torch.Tensor] | None) -> int:
        if prefix is None:
            return 0
        keys, values = prefix
        length = keys.shape[-2]
        self.backbone.keys[..., :length, :].copy_(keys)
        self.backbone.values[..., :length, :].copy_(values)
        return length

    def noise(self, generator: torch.Generator | None) -> torch.Tensor:
        """Exp(1) noise for one frame's 32 samples, drawn before the (graphed) call."""
        noise = torch.empty(NUM_CODEBOOKS, self.vocab, device=self.device, dtype=torch.float32)
        return noise.exponential_(1, generator=generator)

    # --- the graph ----------------------------------------------------------------------

    def frame(self, hidden: torch.Tensor, position: torch.Tensor, noise: torch.Tensor,
              sampling: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden (1, H): the backbone's last hidden state; position (1,): where this
        frame's backbone step goes; noise (32, vocab); sampling: constants of the graph.
        Returns the frame's codes (1, 32)
        and the backbone's hidden state after it (the next frame's input)."""
        model, depth = self.model, self.depth
        c0 = sample_codes(model.lm_head(hidden), noise[0:1], sampling)
        embed = model.depth_decoder.model.embed_tokens
        projector = model.depth_decoder.model.inputs_embeds_projector
        x = torch.stack([hidden, embed(c0)], dim=1)  # positions 0 and 1; codebook 0 offset 0
        codes = [c0]
        for pos in range(1, NUM_CODEBOOKS):
            start = 0 if pos == 1 else pos
            h = depth.forward(projector(x), self.positions[start:pos + 1], None, pos + 1,
                              write=slice(start, pos + 1))
            logits = h[:, -1] @ self.heads[pos - 1]
            code = sample_codes(logits, noise[pos:pos + 1], sampling)
            codes.append(code)
            if pos + 1 < NUM_CODEBOOKS:
                x = embed(code + pos * self.vocab)[:, None]
        frame = torch.stack(codes, dim=-1)  # (1, 32)
        embeds = model.backbone_model.embed_tokens(frame[:, None])  # (1, 1, H)
        mask = self.positions[None, :] <= position[:, None]
        nxt = self.backbone.forward(embeds, position, mask, self.max_positions)
        return frame, nxt[0, -1:]


def compile_step(frame: Callable[..., Any], cuda_graphs: bool,
                 backend: Any = "inductor") -> Callable[..., Any]:
    """A frame function as one graph (fullgraph: a break is an error, not a slowdown); on CUDA
    captured as a CUDA graph. Replays overwrite their outputs, so they are cloned."""
    compiled = torch.compile(frame, fullgraph=True, dynamic=False, backend=backend,
                             mode="reduce-overhead" if cuda_graphs else None)
    if not cuda_graphs:
        return compiled

    def run(*args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        torch.compiler.cudagraph_mark_step_begin()
        codes, hidden = compiled(*args)
        return codes.clone(), hidden.clone()

    return run
