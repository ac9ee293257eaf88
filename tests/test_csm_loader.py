"""Loading CSM in bf16: the language model in bf16, the Mimi codec read in fp32, exactly."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402
from wyoming_verba.backends.csm.loader import load_model  # noqa: E402


def test_bf16_load_keeps_the_codec_exactly_fp32():
    """The checkpoint is fp32 (its codec weights are not bf16 numbers); a bf16 load must
    give the same codec weights as an fp32 load, bit for bit."""
    reference = load_model(str(shared_tiny_csm()), "cpu", "float32", "off").model
    floats = {k: v for k, v in reference.codec_model.state_dict().items()
              if v.is_floating_point()}
    assert all(v.dtype == torch.float32 for v in floats.values())
    # The test means something only if bf16 would round these weights.
    rounded = [k for k, v in floats.items() if not torch.equal(v.bfloat16().float(), v)]
    assert len(rounded) >= 50

    loaded = load_model(str(shared_tiny_csm()), "cpu", "bfloat16", "off")
    model = loaded.model
    assert loaded.dtype == torch.bfloat16
    assert model.backbone_model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    assert model.depth_decoder.codebooks_head.weight.dtype == torch.bfloat16
    assert model.lm_head.weight.dtype == torch.bfloat16
    assert model.embed_text_tokens.weight.dtype == torch.bfloat16
    state = model.codec_model.state_dict()
    for name, value in floats.items():
        assert state[name].dtype == torch.float32, name
        assert torch.equal(state[name], value), name
