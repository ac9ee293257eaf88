"""CSM speed benchmark: the full CSM-1b architecture with random weights (no download).

Runs the backend's own frame loop + streaming Mimi decode per optimisation mode and
reports prefill, time to first audio, ms per frame, RTF and peak VRAM for a fixed frame
count (stop rules disabled). Random weights run the same kernels as the real ones.

    python -m tools.benchmarks.csm_speed --device cuda --size full --frames 150 --json out.json
    python -m tools.benchmarks.csm_speed --device cpu --size reduced --frames 24   # no GPU

Targets on an H200 (full size, bf16, compiled): RTF <= 0.10, first audio <= 120 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from wyoming_verba.backends.csm.generator import CsmGenerator, Sampling, Segment
from wyoming_verba.backends.csm.stopping import StopRules
from wyoming_verba.backends.csm.stream import stream_sentence

FRAME_S = 0.08
TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a nap."


class ByteTokenizer:
    """Stands in for the Llama tokenizer: one id per byte, CSM's bos/eos ids."""

    bos_token_id = 128000
    eos_token_id = 128001

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))


def build_model(size: str, device: str, dtype: torch.dtype):
    from transformers import CsmConfig, CsmForConditionalGeneration

    if size == "full":
        config = CsmConfig()  # sesame/csm-1b: 1.63 B parameters
    else:
        config = CsmConfig(
            hidden_size=512, intermediate_size=1024, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=2, text_vocab_size=129000,
            depth_decoder_config={"backbone_hidden_size": 512, "hidden_size": 256,
                                  "intermediate_size": 512, "num_hidden_layers": 2,
                                  "num_attention_heads": 4, "num_key_value_heads": 2},
        )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = CsmForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.codec_model.float()  # as the backend's loader does
    with torch.no_grad():  # Mimi's init zeroes its codebooks
        for module in model.codec_model.modules():
            if type(module).__name__ == "MimiEuclideanCodebook":
                module.embed_sum.normal_()
                module._embed = None
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_sentence(gen, frames: int, prefix, context, device: str) -> dict:
    rules = StopRules(max_frames=frames, repeat_frames=10**9, silence_frames=10**9)
    sync(device)
    start = time.perf_counter()
    first = None
    samples = 0
    for pcm in stream_sentence(gen, TEXT, 0, rules, prefix=prefix, context=context,
                               sampling=Sampling(0.9, 50), seed=0):
        if first is None:
            first = time.perf_counter() - start
        samples += len(pcm) // 2
    sync(device)
    total = time.perf_counter() - start
    audio_s = samples / 24000
    got = round(audio_s / FRAME_S)
    return {"first_audio_ms": first * 1000, "total_s": total, "audio_s": audio_s,
            "frames": got, "rtf": total / audio_s,
            "ms_per_frame": (total - first) * 1000 / max(1, got - 2)}


def bench_mode(model, mode: str, args, device: str) -> dict:
    gen = CsmGenerator(model, ByteTokenizer(), mode)
    g = torch.Generator().manual_seed(1)
    voice = Segment(0, "This is the reference clip's transcript, about ten seconds long.",
                    torch.randint(1, 2048, (args.prompt_frames, 32), generator=g).to(device))
    context = [Segment(0, "The previous sentence of this reply.",
                       torch.randint(1, 2048, (args.context_frames, 32), generator=g).to(device))]
    sync(device)
    t0 = time.perf_counter()
    prefix = gen.prefix(("bench", mode), [voice])
    sync(device)
    prefix_ms = (time.perf_counter() - t0) * 1000
    warm_start = time.perf_counter()
    for _ in range(args.warmup):  # compile / CUDA-graph recording happen here
        run_sentence(gen, 6, prefix, context, device)
    warmup_s = time.perf_counter() - warm_start
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    runs = [run_sentence(gen, args.frames, prefix, context, device) for _ in range(args.repeat)]
    # Prefill of the per-sentence part (context + text) on top of the cached voice prefix.
    cache = gen._working_cache(prefix[0])
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        gen._backbone_forward(gen.embed([*context, Segment(0, TEXT)]), cache)
    sync(device)
    sentence_prefill_ms = (time.perf_counter() - t0) * 1000
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {
        "mode": mode, "voice_prefix_tokens": prefix[1], "voice_prefill_ms": prefix_ms,
        "sentence_prefill_ms": sentence_prefill_ms, "first_audio_ms": med["first_audio_ms"],
        "ms_per_frame": med["ms_per_frame"], "rtf": med["rtf"], "frames": int(med["frames"]),
        "warmup_s": warmup_s,
        "peak_vram_gib": (torch.cuda.max_memory_allocated() / 2**30
                          if device.startswith("cuda") else None),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"))
    p.add_argument("--size", default="full", choices=("full", "reduced"))
    p.add_argument("--frames", type=int, default=150, help="frames per sentence (80 ms each)")
    p.add_argument("--modes", default=None, help="comma list of eager,static,compiled "
                   "(default: all on CUDA, eager,static on CPU)")
    p.add_argument("--prompt-frames", type=int, default=125, help="voice clip length in frames")
    p.add_argument("--context-frames", type=int, default=50, help="previous sentence frames")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args()

    device = args.device
    dtype = (getattr(torch, args.dtype) if args.dtype != "auto"
             else torch.bfloat16 if device.startswith("cuda") else torch.float32)
    modes = (args.modes.split(",") if args.modes
             else ["eager", "static", "compiled"] if device.startswith("cuda")
             else ["eager", "static"])
    t0 = time.perf_counter()
    model = build_model(args.size, device, dtype)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    print(f"# CSM {args.size} ({params:.2f} B params, random weights) on {name}, "
          f"{str(dtype).replace('torch.', '')}, built in {time.perf_counter() - t0:.1f} s; "
          f"{args.frames} frames, voice prompt {args.prompt_frames} frames, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    results = []
    for mode in modes:
        try:
            results.append(bench_mode(model, mode, args, device))
        except Exception as exc:  # report and continue with the next mode
            results.append({"mode": mode, "error": f"{type(exc).__name__}: {exc}"[:300]})
    header = ("mode", "voice prefill ms", "sentence prefill ms", "first audio ms",
              "ms/frame", "RTF", "peak VRAM GiB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        if "error" in r:
            print(f"| {r['mode']} | failed: {r['error']} |")
            continue
        vram = f"{r['peak_vram_gib']:.2f}" if r["peak_vram_gib"] is not None else "n/a"
        print(f"| {r['mode']} | {r['voice_prefill_ms']:.1f} | {r['sentence_prefill_ms']:.1f} | "
              f"{r['first_audio_ms']:.1f} | {r['ms_per_frame']:.1f} | {r['rtf']:.3f} | {vram} |")
    if args.json:
        meta = {"size": args.size, "device": name, "dtype": str(dtype), "frames": args.frames,
                "params_b": params, "torch": torch.__version__}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
