"""CSM speed on a GPU: full-size CSM-1b from its config with random weights (no download).

Runs the backend's own frame loop (`CsmGenerator`) and streaming Mimi decode per mode
(eager, compiled) and reports voice prefill, sentence prefill, time to first audio, ms per
frame, RTF, peak VRAM, compile/warm-up time, graph breaks, recompiles and CUDA-graph skips
(torch._dynamo counters; run with TORCH_LOGS=graph_breaks,recompiles for the reasons), and
how many codes the compiled step shares with the eager one (same seed, so same noise).
Weights as the loader has them: language model in bf16, Mimi in fp32. Stop rules are off.

    TORCH_LOGS=graph_breaks,recompiles python -m tools.benchmarks.csm_gpu --json out.json
    python -m tools.benchmarks.csm_gpu --tiny --device cpu --frames 12   # tries it on a CPU

Targets on an H200: first audio <= 120 ms, <= 8 ms per frame (RTF <= 0.10), VRAM <= 6 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from wyoming_verba.backends.csm.generator import CsmGenerator, Sampling, Segment
from wyoming_verba.backends.csm.loader import cast_language_model
from wyoming_verba.backends.csm.stopping import StopRules, StopState
from wyoming_verba.backends.csm.stream import stream_sentence

FRAME_S = 0.08
TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a nap."
SAMPLING = Sampling(0.9, 50)


class ByteTokenizer:
    """Stands in for the Llama tokenizer: one id per byte, the model's bos/eos ids."""

    def __init__(self, bos: int, eos: int) -> None:
        self.bos_token_id, self.eos_token_id = bos, eos

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))


def build_model(tiny: bool, device: str, dtype: torch.dtype) -> tuple[Any, ByteTokenizer]:
    from transformers import CsmConfig, CsmForConditionalGeneration

    if tiny:
        from tests.fakes.tiny_csm import tiny_config

        config, tok = tiny_config(), ByteTokenizer(256, 257)
    else:
        config, tok = CsmConfig(), ByteTokenizer(128000, 128001)  # sesame/csm-1b's shape
    torch.manual_seed(0)
    with torch.device(device):
        model = CsmForConditionalGeneration(config).eval()  # fp32, as the loader reads it
    cast_language_model(model, dtype)  # then the language model down, Mimi stays fp32
    with torch.no_grad():  # Mimi's init zeroes its codebooks
        for module in model.codec_model.modules():
            if type(module).__name__ == "MimiEuclideanCodebook":
                module.embed_sum.normal_()
                module.cluster_usage.fill_(1.0)
                module._embed = None
    return model, tok


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, fn: Any) -> tuple[Any, float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, (time.perf_counter() - start) * 1000


def run_sentence(gen: CsmGenerator, frames: int, prefix: Any, context: list[Segment],
                 device: str) -> dict:
    rules = StopRules(max_frames=frames, repeat_frames=10**9, silence_frames=10**9)
    sync(device)
    start = time.perf_counter()
    first = None
    samples = 0
    for pcm in stream_sentence(gen, TEXT, 0, rules, prefix=prefix, context=context,
                               sampling=SAMPLING, seed=0):
        if first is None:
            first = time.perf_counter() - start
        samples += len(pcm) // 2
    sync(device)
    total = time.perf_counter() - start
    assert first is not None
    audio_s = samples / 24000
    got = round(audio_s / FRAME_S)
    return {"first_audio_ms": first * 1000, "total_s": total, "audio_s": audio_s,
            "frames": got, "rtf": total / audio_s,
            "ms_per_frame": (total - first) * 1000 / max(1, got - 2)}


def seeded_codes(gen: CsmGenerator, prefix: Any, frames: int) -> torch.Tensor:
    """Codes with a fixed seed: the noise is drawn outside the graph, so eager and compiled
    see the same noise and differ only where the arithmetic does."""
    stop = StopState(StopRules(max_frames=frames, repeat_frames=10**9, silence_frames=10**9))
    return torch.stack(list(gen.frames(TEXT, 0, stop, prefix=prefix, sampling=SAMPLING,
                                       seed=5))).cpu()


def dynamo_counts() -> dict:
    from torch._dynamo.utils import counters

    return {"graph_breaks": sum(counters["graph_break"].values()),
            "break_reasons": sorted(counters["graph_break"])[:5],
            "unique_graphs": counters["stats"]["unique_graphs"],
            "cudagraph_skips": counters["inductor"]["cudagraph_skips"]}


def bench_mode(model: Any, tok: ByteTokenizer, mode: str, args: Any, device: str) -> dict:
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    gen = CsmGenerator(model, tok, mode)
    g = torch.Generator().manual_seed(1)
    voice = [Segment(0, "This is the reference clip's transcript, about ten seconds long.",
                     torch.randint(1, 2048, (args.prompt_frames, 32), generator=g))]
    context = [Segment(0, "The previous sentence of this reply.",
                       torch.randint(1, 2048, (args.context_frames, 32), generator=g))]
    gen.prefix(("cold", mode), voice)  # first prefill pays cuBLAS/allocator set-up
    prefix, voice_ms = timed(device, lambda: gen.prefix(("bench", mode), voice))
    _, sentence_ms = timed(device, lambda: gen.prefill(prefix, [*context, Segment(0, TEXT)]))
    warm_start = time.perf_counter()
    for _ in range(args.warmup):  # compile and CUDA-graph recording happen here
        run_sentence(gen, 6, prefix, context, device)
    warmup_s = time.perf_counter() - warm_start
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    runs = [run_sentence(gen, args.frames, prefix, context, device) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    counts = dynamo_counts()
    return {
        "mode": mode, "voice_prefix_tokens": prefix[1], "voice_prefill_ms": voice_ms,
        "sentence_prefill_ms": sentence_ms, "first_audio_ms": med["first_audio_ms"],
        "ms_per_frame": med["ms_per_frame"], "rtf": med["rtf"], "frames": int(med["frames"]),
        "warmup_s": warmup_s, **counts,
        "recompiles": max(0, counts["unique_graphs"] - 1),
        "peak_vram_gib": (torch.cuda.max_memory_allocated() / 2**30
                          if device.startswith("cuda") else None),
        "codes": seeded_codes(gen, prefix, args.check_frames),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny CSM (tries the script)")
    p.add_argument("--frames", type=int, default=150, help="frames per sentence (80 ms each)")
    p.add_argument("--modes", default="eager,compiled")
    p.add_argument("--prompt-frames", type=int, default=125, help="voice clip length in frames")
    p.add_argument("--context-frames", type=int, default=50, help="previous sentence frames")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--check-frames", type=int, default=16, help="seeded frames compared")
    p.add_argument("--budget-s", type=float, default=420.0, help="skip modes past this")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args()

    started = time.perf_counter()
    device = args.device
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model, tok = build_model(args.tiny, device, dtype)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    import transformers

    print(f"# CSM {'tiny' if args.tiny else 'full-size'} ({params:.2f} B params, random "
          f"weights, LM {str(dtype).replace('torch.', '')}, Mimi fp32) on {name}, built in "
          f"{time.perf_counter() - started:.1f} s; {args.frames} frames, voice prompt "
          f"{args.prompt_frames} frames, context {args.context_frames} frames; torch "
          f"{torch.__version__}, transformers {transformers.__version__}", flush=True)
    header = ("mode", "voice prefill ms", "sentence prefill ms", "first audio ms", "ms/frame",
              "RTF", "peak VRAM GiB", "warm-up s", "graphs", "breaks", "cudagraph skips",
              "recompiles", "codes = eager")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    meta = {"tiny": args.tiny, "device": name, "dtype": str(dtype), "frames": args.frames,
            "params_b": params, "torch": torch.__version__,
            "transformers": transformers.__version__}
    results: list[dict] = []
    eager = None
    for mode in args.modes.split(","):  # each row printed (and saved) as soon as it is done
        if time.perf_counter() - started > args.budget_s:
            r = {"mode": mode, "error": "skipped: time budget spent"}
        else:
            try:
                r = bench_mode(model, tok, mode, args, device)
            except Exception as exc:  # report and go on with the next mode
                r = {"mode": mode, "error": f"{type(exc).__name__}: {exc}"[:400]}
        results.append(r)
        if "error" in r:
            print(f"| {r['mode']} | failed: {r['error']} |", flush=True)
        else:
            codes = r.pop("codes")
            if mode == "eager":
                eager = codes
            same = (codes == eager).float().mean().item() if eager is not None else float("nan")
            r["codes_match"] = same
            vram = f"{r['peak_vram_gib']:.2f}" if r["peak_vram_gib"] is not None else "n/a"
            print(f"| {r['mode']} | {r['voice_prefill_ms']:.1f} | {r['sentence_prefill_ms']:.1f}"
                  f" | {r['first_audio_ms']:.1f} | {r['ms_per_frame']:.2f} | {r['rtf']:.3f} | "
                  f"{vram} | {r['warmup_s']:.1f} | {r['unique_graphs']} | {r['graph_breaks']} | "
                  f"{r['cudagraph_skips']} | {r['recompiles']} | {same:.1%} |", flush=True)
            if r["break_reasons"]:
                print(f"# {mode} graph breaks: {r['break_reasons']}", flush=True)
        print(f"# {mode} done at {time.perf_counter() - started:.0f} s", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2,
                                            default=str))
    print(f"# total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
