"""Command line of the latency comparison tool."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .progress import Progress
from .report import describe_config, table, to_json
from .runner import BackendResult, BenchConfig, run_backends
from .servers import ServerStartError, external_server, in_process_server, subprocess_server

COMPARE = ("espeak", "piper", "edge", "csm")
DEFAULT_TEXTS = (
    "The living room lights are now off.",
    "It is currently 18 degrees and partly cloudy in Berlin. Tonight it drops to 9 degrees, "
    "with light rain after midnight. Tomorrow will be sunny, with a high of 22 degrees.",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wyoming_verba.bench",
        description="Time what a Home Assistant user waits for: time to first audio, total "
        "time, audio length, RTF, chunks and bytes per backend, over the Wyoming protocol.",
    )
    where = p.add_argument_group("what to measure")
    where.add_argument("--uri", help="a running server (tcp://HOST:PORT or unix://PATH)")
    where.add_argument("--label", help="name of the --uri server in the report")
    where.add_argument("--backend", action="append", default=[],
                       help="start a server for this backend (repeatable or comma-separated)")
    where.add_argument("--compare", action="store_true",
                       help="every backend that comes up: " + ", ".join(COMPARE))
    where.add_argument("--in-process", action="store_true",
                       help="start servers in this process instead of subprocesses "
                       "(lets a caller patch libraries, see tools/benchmarks/bench_fake_edge.py)")
    where.add_argument("--server-arg", action="append", default=[], metavar="FLAG",
                       help="extra server flag, repeatable: --server-arg=--csm-model=DIR")
    where.add_argument("--start-timeout", type=float, default=120.0,
                       help="seconds a server may take to answer describe")

    how = p.add_argument_group("requests")
    how.add_argument("--text", action="append", default=[], help="text to speak (repeatable)")
    how.add_argument("--text-file", type=Path, help="texts to speak, one per line")
    how.add_argument("--voice", help="voice name sent with each request")
    how.add_argument("--runs", type=int, default=5, help="timed requests per text")
    how.add_argument("--warmup", type=int, default=1, help="untimed requests first")
    how.add_argument("--streaming", action="store_true",
                     help="Home Assistant's streaming sequence, text arriving like an LLM reply")
    how.add_argument("--chunk-words", type=int, default=3, help="words per synthesize-chunk")
    how.add_argument("--chunk-delay", type=float, default=0.1,
                     help="seconds between synthesize-chunks")
    how.add_argument("--timeout", type=float, default=60.0, help="seconds per request")

    out = p.add_argument_group("output")
    out.add_argument("--json", nargs="?", const="-", metavar="PATH",
                     help="JSON with every request's timeline (to PATH, or stdout)")
    out.add_argument("--plot", type=Path, metavar="PNG", help="timeline per backend")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def backend_names(args: argparse.Namespace) -> list[str]:
    names = [n.strip() for value in args.backend for n in value.split(",") if n.strip()]
    if args.compare:
        names += [n for n in COMPARE if n not in names]
    return names


def compare_skip_reason(name: str, server_args: Sequence[str]) -> str | None:
    """`--compare` leaves out what `auto` would (CSM without a GPU) instead of trying
    to load a 1.6 B-parameter model on the CPU; naming it with --backend still runs it."""
    from wyoming_verba.backends.factory import auto_skip_reason
    from wyoming_verba.settings import SettingsError, load_settings

    try:
        settings = load_settings(["--backend", name, *server_args])
    except SettingsError as exc:
        return str(exc)
    return auto_skip_reason(name, settings)


def config_from(args: argparse.Namespace) -> BenchConfig:
    texts = list(args.text)
    if args.text_file:
        lines = args.text_file.read_text(encoding="utf-8").splitlines()
        texts += [ln.strip() for ln in lines if ln.strip()]
    return BenchConfig(
        texts=tuple(texts or DEFAULT_TEXTS), runs=args.runs, warmup=args.warmup,
        streaming=args.streaming, chunk_words=args.chunk_words, chunk_delay=args.chunk_delay,
        voice=args.voice, timeout=args.timeout,
    )


async def amain(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
                progress_stream: TextIO | None = None) -> int:
    """Run the bench; 0 when every backend asked for was measured without errors,
    1 when one was skipped or had failed requests, 2 on a usage error."""
    stdout = stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot:  # say so now, not after the whole benchmark has run
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'wyoming-verba[bench]'")
    names = backend_names(args)
    if bool(args.uri) == bool(names):
        parser.error("give either --uri, or --backend/--compare")
    if args.runs < 1 or args.warmup < 0 or args.chunk_words < 1 or args.chunk_delay < 0:
        parser.error("--runs and --chunk-words must be >= 1, --warmup and --chunk-delay >= 0")
    try:
        config = config_from(args)
    except OSError as exc:
        parser.error(f"--text-file: {exc}")

    skipped: dict[str, str] = {}
    if args.compare:
        for name in names:
            if reason := compare_skip_reason(name, args.server_arg):
                skipped[name] = reason

    if args.uri:
        label = args.label or args.uri
        names = [label]

        def start(_name: str):
            return external_server(args.uri)
    elif args.in_process:
        start = functools.partial(in_process_server, server_args=args.server_arg)
    else:
        start = functools.partial(subprocess_server, server_args=args.server_arg,
                                  start_timeout=args.start_timeout)

    to_run = [n for n in names if n not in skipped]
    progress = Progress(config.requests_per_backend * len(to_run), stream=progress_stream,
                        enabled=False if args.quiet else None)
    measured: dict[str, BackendResult] = {}
    try:
        async for result in run_backends(to_run, start, config, progress):
            measured[result.name] = result
    finally:
        progress.close()
    results = [measured.get(n) or BackendResult(n, skipped=skipped[n]) for n in names]

    if args.json:
        text = to_json(results, config)
        if args.json == "-":
            print(text, file=stdout)
        else:
            with open(args.json, "w", encoding="utf-8") as f:  # noqa: ASYNC230 - tiny, at the end
                f.write(text + "\n")
    if args.json != "-":
        print(describe_config(config), file=stdout)
        print(table(results, config), file=stdout)
    if args.plot:
        from .plot import plot_timeline

        try:
            plot_timeline(results, args.plot, describe_config(config))
        except ValueError as exc:
            print(f"--plot: {exc}", file=sys.stderr)
    failed = any(r.skipped or r.summary.errors for r in results)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        return 130


__all__ = ["ServerStartError", "amain", "build_parser", "main"]
