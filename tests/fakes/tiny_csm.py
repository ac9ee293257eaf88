"""Build a tiny, randomly initialised CSM checkpoint (offline, < 1 s) for the tests.

It keeps the real codebook structure (32 codebooks, vocab 2051, Mimi strides [8, 6, 5, 4],
1920 samples per 80 ms frame at 24 kHz) with tiny widths and depths, and is saved with
`save_pretrained` so the backend loads it through the same code as sesame/csm-1b."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>"]
# sesame/csm-1b's prompt format, written here from its documented rendering (the real
# checkpoint ships its own template with input checks): per turn `<bos>[speaker]text<eos>`,
# then `<|AUDIO|><|audio_eos|>` when the turn has audio (the processor expands <|AUDIO|>).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- bos_token + '[' + message['role'] + ']' + message['content'][0]['text'] + eos_token -}}"
    "{%- if message['content'] | length > 1 -%}{{- '<|AUDIO|><|audio_eos|>' -}}{%- endif -%}"
    "{%- endfor -%}"
)


def tiny_config(sliding_window: int = 16):
    from transformers import CsmConfig

    codec = {
        "model_type": "mimi",
        "hidden_size": 32,
        "num_filters": 4,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "intermediate_size": 64,
        "codebook_dim": 16,
        "vector_quantization_hidden_dimension": 16,
        "upsample_groups": 32,
        "sliding_window": sliding_window,  # small, so tests cross the window
        # Mimi's default layer scale (0.01) leaves its transformer ~3e-5 of the output: tests
        # could not tell a decode without its KV cache. At 1.0 the transformer matters.
        "layer_scale_initial_scale": 1.0,
        "num_quantizers": 32,
        "codebook_size": 2048,
    }
    depth = {
        "num_codebooks": 32,
        "backbone_hidden_size": 64,
        "vocab_size": 2051,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 33,
    }
    return CsmConfig(
        num_codebooks=32,
        vocab_size=2051,
        text_vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=0,
        pad_token_id=2,
        audio_token_id=2,
        audio_eos_token_id=3,
        depth_decoder_config=depth,
        codec_config=codec,
    )


def tiny_tokenizer():
    """A byte-level BPE whose first ids are the CSM specials, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["[0]Hello there, how are you today?", "[1]The quick brown fox jumps over it.",
              "Testing one two three. Speech synthesis on a tiny model!"] * 20
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|AUDIO|>",
    )


def build_tiny_csm(out_dir: Path, seed: int = 0) -> Path:
    """Create and save the checkpoint (model + tokenizer + feature extractor) in out_dir."""
    import torch
    from transformers import CsmForConditionalGeneration, CsmProcessor, EncodecFeatureExtractor

    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(tiny_config()).eval()
    # Mimi's init zeroes every codebook, so every code would decode to the same waveform.
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.codec_model.modules():
            if type(module).__name__ == "MimiEuclideanCodebook":
                module.embed_sum.copy_(torch.randn(module.embed_sum.shape, generator=gen))
                module.cluster_usage.fill_(1.0)
                module._embed = None
        # Random codebooks decode to a huge waveform: scale the last conv to speech-like levels
        # (std ~0.1) so the int16 output does not clip and the silence rule sees real levels.
        codes = torch.randint(0, 2048, (1, 32, 20), generator=gen)
        level = model.codec_model.decode(codes).audio_values.std().item()
        decoder = model.codec_model.decoder  # SEANet under decoder_seanet from 5.21 on
        last = getattr(decoder, "decoder_seanet", decoder).layers[-1].conv
        last.weight.mul_(0.1 / level)
        last.bias.mul_(0.1 / level)
    processor = CsmProcessor(EncodecFeatureExtractor(sampling_rate=24000), tiny_tokenizer(),
                             chat_template=CHAT_TEMPLATE)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


_SHARED: Path | None = None


def shared_tiny_csm() -> Path:
    """One checkpoint per test session, shared by every CSM test module."""
    global _SHARED
    if _SHARED is None:
        import atexit
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="tiny-csm-"))
        atexit.register(shutil.rmtree, tmp, True)
        _SHARED = build_tiny_csm(tmp / "model")
    return _SHARED
