"""Loading CSM: device and dtype, weights from a Hugging Face id or a local directory,
and the one clear message when that fails. Blocking: run it on the CSM worker thread."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import BackendUnavailable

_LOGGER = logging.getLogger(__name__)

MODEL_PAGE = "https://huggingface.co/sesame/csm-1b"


class CsmLoadError(BackendUnavailable):
    """The model cannot be loaded; not worth retrying until the setup changes."""

    transient = False


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    mode: str  # generator mode: eager | compiled


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise CsmLoadError(
            f"--csm-device {setting}: torch sees no CUDA GPU (check the NVIDIA driver and "
            "`docker run --gpus all`), or use --csm-device cpu", backend="csm")
    return setting


def resolve_dtype(setting: str, device: str) -> Any:
    """bf16 on CUDA (fp16 where the GPU lacks bf16), fp32 on CPU, unless overridden."""
    import torch

    if setting != "auto":
        return getattr(torch, setting)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def resolve_mode(setting: str, device: str) -> str:
    """auto: the frame step compiled as one graph (CUDA graphs) on CUDA, eager elsewhere
    (compiling on CPU costs more than it gains); on: compiled everywhere; off: eager."""
    if setting == "off":
        return "eager"
    if device.startswith("cuda") or setting == "on":
        return "compiled"
    return "eager"


def _load_error(source: str, exc: BaseException) -> CsmLoadError:
    if Path(source).expanduser().is_dir():
        return CsmLoadError(
            f"cannot load CSM from {source}: {exc}. The directory must hold a transformers "
            "CSM checkpoint (config.json, model.safetensors, tokenizer files).", backend="csm")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    token = "HF_TOKEN is set" if os.environ.get("HF_TOKEN") else "HF_TOKEN is not set"
    return CsmLoadError(
        f"cannot load CSM model {source!r} ({reason}; {token}). Fix: accept the licence on "
        f"{MODEL_PAGE} and set HF_TOKEN to a token of that account, or download the model and "
        "point --csm-model at the local directory.", backend="csm")


def load_model(model_id: str, device_setting: str = "auto", dtype_setting: str = "auto",
               compile_setting: str = "auto") -> LoadedModel:
    try:
        import torch
        from transformers import AutoTokenizer, CsmForConditionalGeneration
    except ImportError as exc:
        raise CsmLoadError(
            f"CSM needs torch and transformers ({exc}): pip install 'wyoming-verba[csm]'",
            backend="csm") from None
    from .compat import check_transformers

    check_transformers()  # before 1B weights: an unsupported release fails in one line
    device = resolve_device(device_setting)
    dtype = resolve_dtype(dtype_setting, device)
    source = str(Path(model_id).expanduser()) if Path(model_id).expanduser().is_dir() else model_id
    _LOGGER.info("CSM: loading %s on %s (%s)", source, device, str(dtype).replace("torch.", ""))
    started = time.monotonic()
    try:
        from huggingface_hub.errors import HfHubHTTPError

        errors: tuple[type[BaseException], ...] = (OSError, ValueError, HfHubHTTPError)
    except ImportError:  # pragma: no cover - comes with transformers
        errors = (OSError, ValueError)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        # Read in fp32: casting down afterwards is exact, while loading in bf16 and then
        # calling .float() on Mimi would keep bf16's rounding of the codec's weights.
        model = CsmForConditionalGeneration.from_pretrained(source, dtype=torch.float32)
    except errors as exc:
        raise _load_error(source, exc) from None
    try:
        cast_language_model(model, dtype)  # Mimi stays fp32: small, and decodes cleaner
        model = model.to(device).eval()
    except torch.OutOfMemoryError as exc:
        del model
        _free_cuda()
        raise CsmLoadError(f"CSM does not fit on {device}: {exc}", backend="csm") from None
    params = sum(p.numel() for p in model.parameters())
    _LOGGER.info("CSM: %.2f B parameters loaded in %.1f s", params / 1e9,
                 time.monotonic() - started)
    return LoadedModel(model, tokenizer, device, dtype, resolve_mode(compile_setting, device))


def cast_language_model(model: Any, dtype: Any) -> None:
    """Backbone, depth decoder, text embeddings and head to `dtype`; the codec untouched."""
    for name, child in model.named_children():
        if name != "codec_model":
            child.to(dtype)


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
