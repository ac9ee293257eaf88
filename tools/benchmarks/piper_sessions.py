"""Why Piper's pool runs a lone sentence on a wide session and overlapping sentences on a
one-thread session: wall and CPU time a sentence for each way, in one process.

    python -m tools.benchmarks.piper_sessions [--texts 60] [--rounds 2]

Sessions are made by the backend's own `_load_voice` (the server's options: memory arena,
spin-waiting), for the bundled en_US-joe-medium voice, on household sentences that differ
from each other. `alone`: one sentence at a time; `two at once`: one worker thread a core,
each taking the next sentence, on one shared session (as the pool's workers share it).
Modes alternate within each round; CPU is the whole process's, per sentence."""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from tools.benchmarks.loadgen import household_texts
from tools.benchmarks.piper_vs_wyoming_piper import VOICE, voice_dir
from wyoming_verba.backends.piper.backend import _load_voice, worker_plan
from wyoming_verba.backends.piper.voices import VoiceDirectory
from wyoming_verba.backends.threads import cpu_count


def speak_all(voice: Any, texts: list[str], workers: int) -> tuple[float, float]:
    """(wall ms, CPU ms) a sentence, `workers` threads taking the texts in turn."""
    todo = iter(texts)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                text = next(todo, None)
            if text is None:
                return
            for _ in voice.synthesize(text):
                pass

    threads = [threading.Thread(target=work) for _ in range(workers)]
    wall, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    n = len(texts)
    return 1000 * (time.perf_counter() - wall) / n, 1000 * (time.process_time() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=60, help="sentences per mode and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    files = VoiceDirectory((voice_dir(),)).find(VOICE)
    assert files is not None, VOICE
    workers, threads = worker_plan(cpu_count())
    wide = _load_voice(files, ["CPUExecutionProvider"], threads)
    narrow = _load_voice(files, ["CPUExecutionProvider"], 1)
    modes: dict[str, Callable[[list[str]], tuple[float, float]]] = {
        f"alone, {threads} threads": lambda t: speak_all(wide, t, 1),
        "alone, 1 thread": lambda t: speak_all(narrow, t, 1),
        f"{workers} at once, shared {threads}-thread session":
            lambda t: speak_all(wide, t, workers),
        f"{workers} at once, shared 1-thread session": lambda t: speak_all(narrow, t, workers),
    }
    texts = iter(household_texts(args.texts * len(modes) * args.rounds + 10))
    for voice in (wide, narrow):  # warm both arenas
        speak_all(voice, list(itertools.islice(texts, 5)), workers)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    names = list(modes)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            results[name].append(modes[name](list(itertools.islice(texts, args.texts))))
    print(f"{VOICE}, {cpu_count()} cores, {args.texts} sentences per mode and round, "
          f"{args.rounds} rounds (medians)\n")
    print("| mode | wall ms a sentence | sentences/s | CPU ms a sentence |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {name} | {wall:.1f} | {1000 / wall:.2f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
