"""A stateful streaming decoder for transformers' Mimi codec.

transformers' `MimiModel.decode` keeps no state between calls, so decoding a sentence in
pieces breaks every boundary. This decoder walks the same modules (quantizer, upsample,
decoder transformer, SEANet decoder) and carries the state each one needs between calls:

- causal `MimiConv1d`: the last `padding_total` input samples (what one-shot decode sees
  as left context; the first call starts from the same zero/replicate padding);
- `MimiConvTranspose1d`: overlap-add of the `kernel - stride` tail, bias added once;
- the decoder transformer: a KV cache, positions continuing across calls.

Feeding codes frame by frame therefore yields exactly the samples a one-shot decode of
all codes yields (up to float rounding), and each call returns 1920 samples per frame.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F


class MimiStreamDecoder:
    """Decode Mimi codes incrementally. One instance per stream (sentence)."""

    def __init__(self, codec: Any) -> None:
        from transformers.cache_utils import DynamicCache
        from transformers.models.mimi.modeling_mimi import MimiConv1d, MimiConvTranspose1d

        from .compat import cache_keyword

        self._conv_types = (MimiConv1d, MimiConvTranspose1d)
        self.codec = codec
        decoder = codec.decoder  # this layout (upsample, transformer, SEANet) is 5.21+
        self.upsample = decoder.upsample
        self.transformer = decoder.decoder_transformer
        self.seanet_layers = decoder.decoder_seanet.layers
        self._params = decoder
        self._kv = DynamicCache(config=self.transformer.config)
        # `cache=` on 5.24+, `past_key_values=` before: an unknown name is silently dropped.
        self._cache_kw = cache_keyword(type(self.transformer).forward)
        self._state: dict[int, torch.Tensor] = {}  # id(module) -> carried tensor
        self._skip: dict[int, int] = {}  # left trim still owed by a transposed conv
        self.frames = 0

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (frames, num_codebooks) or (1, num_codebooks, frames) long tensor.
        Returns float audio (samples,) on the codec's device."""
        if codes.dim() == 2:
            codes = codes.t().unsqueeze(0)
        if codes.shape[-1] == 0:
            return torch.zeros(0, device=codes.device)
        self.frames += codes.shape[-1]
        latents = self.codec.quantizer.decode(codes)
        hidden = latents.to(self._dtype())
        if self.upsample is not None:
            hidden = self._conv_transpose(self.upsample, hidden)
        out = self.transformer(
            hidden.transpose(1, 2), use_cache=True, **{self._cache_kw: self._kv}
        )
        hidden = out.last_hidden_state.transpose(1, 2)
        for layer in self.seanet_layers:
            hidden = self._apply(layer, hidden)
        return hidden[0, 0]

    def _dtype(self) -> torch.dtype:
        return next(self._params.parameters()).dtype

    def _apply(self, layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        conv1d, conv_t = self._conv_types
        if isinstance(layer, conv1d):
            return self._conv1d(layer, hidden)
        if isinstance(layer, conv_t):
            return self._conv_transpose(layer, hidden)
        if hasattr(layer, "block"):  # MimiResnetBlock: residual + its own conv stack
            residual = hidden
            for sub in cast(nn.ModuleList, layer.block):
                hidden = self._apply(sub, hidden)
            return self._apply(cast(nn.Module, layer.shortcut), residual) + hidden
        return layer(hidden)  # ELU, Identity: pointwise, stateless

    def _conv1d(self, layer: Any, hidden: torch.Tensor) -> torch.Tensor:
        conv: nn.Conv1d = layer.conv
        if conv.stride[0] != 1:
            raise ValueError("streaming Mimi decode expects stride-1 convolutions")
        pad = int(layer.padding_total)
        key = id(layer)
        prev = self._state.get(key)
        if prev is None:  # the same left padding one-shot decode applies
            if layer.pad_mode == "replicate":
                prev = hidden[..., :1].expand(-1, -1, pad)
            else:
                prev = hidden.new_zeros(hidden.shape[0], hidden.shape[1], pad)
        full = torch.cat([prev, hidden], dim=-1)
        self._state[key] = full[..., full.shape[-1] - pad :]
        return conv(full)

    def _conv_transpose(self, layer: Any, hidden: torch.Tensor) -> torch.Tensor:
        conv: nn.ConvTranspose1d = layer.conv
        stride, kernel = conv.stride[0], conv.kernel_size[0]
        overlap = kernel - stride
        out = F.conv_transpose1d(hidden, conv.weight, None, stride, groups=conv.groups)
        key = id(layer)
        tail = self._state.get(key)
        if tail is not None:
            out = torch.cat([out[..., :overlap] + tail, out[..., overlap:]], dim=-1)
        self._state[key] = out[..., out.shape[-1] - overlap :]
        out = out[..., : out.shape[-1] - overlap]
        if conv.bias is not None:
            out = out + conv.bias[None, :, None]
        # One-shot decode trims padding_left at the very start and padding_right at the end;
        # the right part is exactly the tail we hold back, the left part we drop once.
        skip = self._skip.setdefault(key, int(layer.padding_left))
        if skip:
            cut = min(skip, out.shape[-1])
            out = out[..., cut:]
            self._skip[key] = skip - cut
        return out


def decode_one_shot(codec: Any, codes: torch.Tensor) -> torch.Tensor:
    """transformers' own stateless decode of (frames, num_codebooks) codes, for reference."""
    with torch.inference_mode():
        return codec.decode(codes.t().unsqueeze(0)).audio_values[0, 0]
