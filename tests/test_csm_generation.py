"""CSM frame loop, streaming Mimi decode and stop rules on a tiny random checkpoint (CPU)."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402
from wyoming_verba.backends.csm.generator import (  # noqa: E402
    CsmGenerator,
    Sampling,
    Segment,
)
from wyoming_verba.backends.csm.loader import load_model  # noqa: E402
from wyoming_verba.backends.csm.mimi_stream import (  # noqa: E402
    MimiStreamDecoder,
    decode_one_shot,
)
from wyoming_verba.backends.csm.stopping import (  # noqa: E402
    StopRules,
    StopState,
    frame_cap,
    is_end_frame,
)
from wyoming_verba.backends.csm.stream import FADE_SAMPLES, stream_sentence  # noqa: E402

GREEDY = Sampling(temperature=0, top_k=0)


@pytest.fixture(scope="session")
def tiny_dir():
    return shared_tiny_csm()


@pytest.fixture(scope="session")
def loaded(tiny_dir):
    return load_model(str(tiny_dir), "cpu", "auto", "auto")


@pytest.fixture
def gen(loaded):
    return CsmGenerator(loaded.model, loaded.tokenizer, "eager")


def random_codes(frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 2048, (frames, 32), generator=g)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


# --- loading -------------------------------------------------------------------


def test_loader_resolves_cpu_fp32_eager(loaded):
    assert loaded.device == "cpu"
    assert loaded.dtype == torch.float32
    assert loaded.mode == "eager"
    assert next(loaded.model.codec_model.parameters()).dtype == torch.float32


# --- streaming Mimi -------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[1] * 30, [2, 2, 4, 4, 4, 4, 4, 4, 2], [7, 1, 13, 9]])
def test_stream_decode_equals_one_shot(loaded, sizes):
    codec = loaded.model.codec_model
    codes = random_codes(sum(sizes))  # 30 frames = 60 transformer steps > sliding window 16
    reference = decode_one_shot(codec, codes)
    decoder = MimiStreamDecoder(codec)
    parts, start = [], 0
    for n in sizes:
        part = decoder.decode(codes[start:start + n])
        assert part.shape[-1] == n * 1920
        parts.append(part)
        start += n
    # Float rounding leaves ~1e-6; a decode without the transformer's KV cache is off by
    # ~2.5e-3 on this checkpoint (its codec transformer has layer scale 1.0), so 1e-5 tells.
    assert rel_error(torch.cat(parts), reference) < 1e-5


def test_independent_chunk_decode_is_not_equal(loaded):
    """The trap the stateful decoder avoids: decoding chunks separately breaks joins."""
    codec = loaded.model.codec_model
    codes = random_codes(12, seed=3)
    reference = decode_one_shot(codec, codes)
    naive = torch.cat([decode_one_shot(codec, codes[i:i + 2]) for i in range(0, 12, 2)])
    assert rel_error(naive, reference) > 1e-2


# --- frame loop -------------------------------------------------------------------


def test_frame_loop_matches_transformers_generate(loaded, gen):
    stop = StopState(StopRules(max_frames=10))
    ours = torch.stack(list(gen.frames("Hello there.", 0, stop, sampling=GREEDY)))
    ids = gen.text_ids(0, "Hello there.")[None]
    theirs = loaded.model.generate(input_ids=ids, do_sample=False,
                                   depth_decoder_do_sample=False, max_new_tokens=10)
    assert ours.shape == (10, 32)
    assert torch.equal(ours, theirs[0])


def test_frame_loop_input_equals_chat_template(loaded, gen, tiny_dir):
    """The loop's prompt (voice clip turn + previous sentence turn + the new sentence) is what
    transformers builds from CsmProcessor.apply_chat_template: the same token layout, and the
    same input embeddings once the model has encoded the audio and merged it in."""
    import numpy as np
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_dir)
    model = loaded.model
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(10 * 1920)).astype(np.float32)  # 10 frames
    previous = (0.1 * rng.standard_normal(6 * 1920)).astype(np.float32)  # 6 frames
    conversation = [
        {"role": "0", "content": [{"type": "text", "text": "Voice prompt."},
                                  {"type": "audio", "audio": clip}]},
        {"role": "0", "content": [{"type": "text", "text": "The previous sentence."},
                                  {"type": "audio", "audio": previous}]},
        {"role": "0", "content": [{"type": "text", "text": "Hi there."}]},
    ]
    inputs = processor.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                           return_tensors="pt")

    def codes(samples):  # as the backend encodes a reference clip
        with torch.inference_mode():
            wav = torch.from_numpy(samples).view(1, 1, -1)
            return model.codec_model.encode(wav).audio_codes[0].t().contiguous()

    segments = [Segment(0, "Voice prompt.", codes(clip)),
                Segment(0, "The previous sentence.", codes(previous)), Segment(0, "Hi there.")]
    audio_id, audio_eos_id = processor.audio_token_id, processor.audio_eos_token_id
    ours_ids = []
    for seg in segments:
        ours_ids += gen.text_ids(seg.speaker, seg.text).tolist()
        if seg.codes is not None:
            ours_ids += [audio_id] * seg.codes.shape[0] + [audio_eos_id]
    assert inputs["input_ids"][0].tolist() == ours_ids
    with torch.inference_mode():
        theirs = model._merge_input_ids_with_input_values(
            inputs["input_ids"], inputs["input_values"], inputs["input_values_cutoffs"]
        )["inputs_embeds"]
        ours = gen.embed(segments)
    assert ours.shape == theirs.shape == (1, len(ours_ids), model.config.hidden_size)
    assert torch.equal(ours, theirs)


def test_cached_voice_prefix_equals_full_prompt(gen):
    """Reusing the voice prompt's KV prefix gives what prefilling it every time gives."""
    voice = Segment(0, "Voice prompt.", random_codes(6, seed=5))
    cached = gen.prefix("voice", [voice])
    assert gen.prefix("voice", [voice]) is cached  # computed once
    with_prefix = list(gen.frames("Hi.", 0, StopState(StopRules(6)), prefix=cached,
                                  sampling=GREEDY))
    inline = list(gen.frames("Hi.", 0, StopState(StopRules(6)), context=[voice],
                             sampling=GREEDY))
    assert torch.equal(torch.stack(with_prefix), torch.stack(inline))


def test_context_changes_generation(gen):
    plain = list(gen.frames("Hi.", 0, StopState(StopRules(6)), sampling=GREEDY))
    ctx = [Segment(0, "Earlier sentence.", random_codes(8, seed=4))]
    with_ctx = list(gen.frames("Hi.", 0, StopState(StopRules(6)), context=ctx,
                               sampling=GREEDY))
    assert not torch.equal(torch.stack(plain), torch.stack(with_ctx))


def test_seed_reproducible_and_specials_suppressed(gen):
    sampling = Sampling(temperature=1.5, top_k=0)  # flat: specials would show up otherwise
    a = torch.stack(list(gen.frames("Seeded.", 0, StopState(StopRules(6)), sampling=sampling,
                                    seed=7)))
    b = torch.stack(list(gen.frames("Seeded.", 0, StopState(StopRules(6)), sampling=sampling,
                                    seed=7)))
    c = torch.stack(list(gen.frames("Seeded.", 0, StopState(StopRules(6)), sampling=sampling,
                                    seed=8)))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    logits = torch.zeros(1, 2051)
    logits[0, 2048:] = 100.0
    picks = {gen.sample(logits.clone(), sampling, None).item() for _ in range(50)}
    assert max(picks) < 2048
    assert gen.sample(logits.clone(), GREEDY, None).item() < 2048


def test_context_budget_drops_oldest_turns(gen):
    long_ctx = [Segment(0, "Old.", random_codes(1000, seed=1)),
                Segment(0, "Newer.", random_codes(1000, seed=2))]
    kept, frames = gen.budget(0, long_ctx, 10, 200)
    assert [s.text for s in kept] == ["Newer."]
    assert frames == 200


# --- streaming a sentence -------------------------------------------------------------


def test_first_chunk_after_two_frames_and_stream_equals_one_shot(loaded, gen, monkeypatch):
    produced: list[int] = []
    original = gen.next_frame

    def counting(*args, **kwargs):
        produced.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(gen, "next_frame", counting)
    codes: list[torch.Tensor] = []
    chunks, frames_at_chunk = [], []
    for pcm in stream_sentence(gen, "Streaming test.", 0, StopRules(max_frames=12),
                               sampling=Sampling(0.9, 50), seed=1, codes_out=codes):
        chunks.append(pcm)
        frames_at_chunk.append(len(produced))
    # Two frames make the first chunk; a third is already running on the device while
    # the host reads the second (the end-frame test is deferred one frame).
    assert frames_at_chunk[0] <= 3
    assert [len(c) // (1920 * 2) for c in chunks] == [2, 2, 4, 4]
    streamed = torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.int16).float() / 32767
    reference = decode_one_shot(loaded.model.codec_model, torch.stack(codes)).clamp(-1, 1)
    assert streamed.shape == reference.shape
    body = slice(0, -FADE_SAMPLES)  # the cap cut the sentence: its last 5 ms fade out
    assert (streamed[body] - reference[body]).abs().max().item() < 5e-5  # int16 rounding: 1.5e-5
    assert streamed[-1] == 0


def scripted(gen, monkeypatch, frames: list[list[int]]):
    it = iter(frames)
    monkeypatch.setattr(gen, "next_frame", lambda *a, **k: torch.tensor(next(it)))


def test_end_frame_stops_and_is_not_played(gen, monkeypatch):
    frames = [[i + 1] * 32 for i in range(5)] + [[0] * 31 + [17]] + [[9] * 32] * 5
    scripted(gen, monkeypatch, frames)
    codes: list[torch.Tensor] = []
    audio = b"".join(stream_sentence(gen, "End.", 0, StopRules(max_frames=50), codes_out=codes))
    assert len(codes) == 5
    assert len(audio) == 5 * 1920 * 2


def test_repeated_frames_stop(gen, monkeypatch):
    scripted(gen, monkeypatch, [[5] * 32] * 40)
    stop = StopState(StopRules(max_frames=40, repeat_frames=10))
    assert len(list(gen.frames("Stuck.", 0, stop))) == 10
    assert stop.reason == "repeat"


def test_frame_cap_proportional_to_text(gen):
    short, long = frame_cap("Hi."), frame_cap("A much longer sentence " * 4)
    assert short < long
    assert frame_cap("x" * 100_000) == round(45 * 12.5)
    stop = StopState(StopRules(max_frames=short))
    frames = list(gen.frames("Hi.", 0, stop, sampling=Sampling(0.9, 50), seed=3))
    assert stop.reason in ("cap", "end")
    assert len(frames) <= short


def test_silence_rule():
    state = StopState(StopRules(max_frames=100, silence_frames=3))
    assert not any(state.on_level(0.0) for _ in range(10))  # leading silence is fine
    assert not state.on_level(0.2)
    assert not state.on_level(0.0)
    assert not state.on_level(0.0)
    assert state.on_level(0.0)
    assert state.reason == "silence"
    assert is_end_frame([0] * 31 + [5])
    assert not is_end_frame([0] * 30 + [1, 0])


def test_long_silence_ends_stream(gen, monkeypatch):
    scripted(gen, monkeypatch, [[i % 7 + 1] * 31 + [i] for i in range(60)])
    calls = []

    def fake_decode(self, codes):  # first chunk speaks, then silence
        calls.append(1)
        return torch.full((codes.shape[0] * 1920,), 0.5 if len(calls) == 1 else 0.0)

    monkeypatch.setattr("wyoming_verba.backends.csm.stream.MimiStreamDecoder.decode",
                        fake_decode)
    rules = StopRules(max_frames=60, silence_frames=5)
    chunks = list(stream_sentence(gen, "Quiet.", 0, rules))
    # chunks of 2 (loud), 2 and 4 quiet frames: the 5th quiet frame is in the third chunk,
    # which the silence rule stops and, silent, is not played
    assert [len(c) // (1920 * 2) for c in chunks] == [2, 2]


def test_cancellation_stops_at_next_frame(gen):
    from wyoming_verba.backends.csm.generator import Cancelled

    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    frames = gen.frames("Cancel me.", 0, StopState(StopRules(50)), should_stop=should_stop)
    got = []
    with pytest.raises(Cancelled):
        for frame in frames:
            got.append(frame)
    # Checked before each launch: 3 frames launched, the one in flight is dropped.
    assert len(got) == 2
