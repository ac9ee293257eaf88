"""The latency bench: its measurement against a backend with known, injected delays,
the statistics, the report, and the CLI's ways of reaching a server."""

from __future__ import annotations

import importlib.util
import io
import json
import sys

import numpy as np
import pytest

from tests.fakes.tone_backend import SECONDS_PER_CHAR, Faults, ToneBackend
from wyoming_verba.bench import amain
from wyoming_verba.bench.measure import Trace, measure_plain, measure_streaming, split_words
from wyoming_verba.bench.progress import Progress
from wyoming_verba.bench.report import table, to_json
from wyoming_verba.bench.runner import BackendResult, BenchConfig, run_requests
from wyoming_verba.bench.servers import free_port
from wyoming_verba.bench.stats import percentile, summarize

pytestmark = pytest.mark.timeout(30)

TOL = 0.15  # loopback + scheduling slack on a loaded 2-core machine


def tone_seconds(text: str) -> float:
    """How much audio ToneBackend speaks for `text` (one tone per word, +1 char)."""
    return sum((len(w) + 1) * SECONDS_PER_CHAR for w in text.split())


# --- pure pieces -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["One two three four five.", "  Hi,  there\nyou ", "x", ""])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_split_words_rejoins_and_groups(text: str, n: int) -> None:
    chunks = split_words(text, n)
    assert "".join(chunks) == text
    assert all(len(c.split()) <= n for c in chunks)
    assert len(chunks) == (-(-len(text.split()) // n) if text.split() else (1 if text else 0))


def test_percentile_matches_numpy() -> None:
    values = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2]
    for q in (0, 10, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) is None
    assert percentile([4.0], 90) == 4.0


def _trace(first: float, done: float, audio_bytes: int, chunks: int = 2) -> Trace:
    per = audio_bytes // chunks
    return Trace(text="t", streaming=False, sent=[(0.0, 1)],
                 chunks=[(first + i * 0.01, per) for i in range(chunks)],
                 done_s=done, rate=24000, width=2, channels=1)


def test_summary_of_known_traces() -> None:
    one_second = 48000
    traces = [_trace(0.1, 1.0, one_second), _trace(0.3, 2.0, 2 * one_second),
              _trace(0.2, 1.5, one_second, chunks=4)]
    failed = Trace(text="t", streaming=False, sent=[(0.0, 1)], error="boom")
    s = summarize([*traces, failed])
    assert (s.requests, s.errors) == (4, 1)
    assert s.first_audio_p50 == pytest.approx(0.2)
    assert s.first_audio_p90 == pytest.approx(0.28)
    assert s.total_p50 == pytest.approx(1.5)
    assert s.audio_s == pytest.approx(4 / 3)
    assert s.rtf == pytest.approx(4.5 / 4)
    assert s.chunks == pytest.approx(8 / 3)
    assert s.bytes == pytest.approx(4 * one_second / 3)


def test_table_and_json_report() -> None:
    config = BenchConfig(texts=("t",), runs=2)
    results = [BackendResult("tone", [_trace(0.1, 1.0, 48000), _trace(0.3, 2.0, 48000)]),
               BackendResult("csm", skipped="no CUDA GPU")]
    text = table(results, config)
    lines = text.splitlines()
    assert lines[0].startswith("| backend") and "first audio p50" in lines[0]
    assert "after last text" not in lines[0]  # a streaming-only column
    row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row[:7] == ["tone", "2", "0", "0.200", "0.280", "1.500", "1.900"]
    assert lines[-1] == "skipped csm: no CUDA GPU"
    assert "after last text p50" in table(results, BenchConfig(texts=("t",), streaming=True))
    data = json.loads(to_json(results, config))
    assert data["config"]["runs"] == 2
    tone, csm = data["backends"]
    assert tone["summary"]["first_audio_p50"] == pytest.approx(0.2)
    assert len(tone["requests"]) == 2 and tone["requests"][0]["first_audio_s"] == 0.1
    assert csm == {"name": "csm", "skipped": "no CUDA GPU", "summary": None, "requests": []}


def test_progress_bar_only_on_a_terminal() -> None:
    quiet = io.StringIO()  # not a TTY
    bar = Progress(4, stream=quiet)
    bar.advance()
    bar.close()
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    bar = Progress(4, stream=shown, enabled=True, width=8)
    bar.label("espeak")
    bar.advance(2)
    assert "\r[####----] 2/4 espeak" in shown.getvalue()
    bar.close()
    assert shown.getvalue().endswith("\r")  # the line is cleared for the report


# --- measurement against injected delays ---------------------------------------------


async def test_plain_first_audio_matches_the_injected_delay(verba_server) -> None:
    srv = await verba_server(backends=[ToneBackend(faults=Faults(first_delay=0.4))])
    text = "Turn the kitchen lights off."
    trace = await measure_plain(srv.uri, text)
    assert trace.ok, trace.error
    assert 0.4 <= trace.first_audio_s < 0.4 + TOL
    assert trace.first_audio_s <= trace.done_s < 0.4 + TOL + 0.2
    assert trace.sent == [(0.0, len(text))]
    assert (trace.rate, trace.width, trace.channels) == (24000, 2, 1)
    assert trace.audio_s == pytest.approx(tone_seconds(text), abs=0.01)
    assert trace.rtf == pytest.approx(trace.done_s / trace.audio_s)


async def test_total_time_includes_delays_after_first_audio(verba_server) -> None:
    # A pause after every word: first audio is early, the reply ends ~0.6 s later.
    srv = await verba_server(backends=[ToneBackend(faults=Faults(chunk_delay=0.2))])
    trace = await measure_plain(srv.uri, "one two three four")
    assert trace.ok, trace.error
    assert trace.first_audio_s < TOL
    assert 0.6 <= trace.done_s < 0.8 + TOL
    assert len(trace.chunks) >= 4  # at least one audio-chunk per word, in separate bursts
    assert trace.chunks[-1][0] - trace.chunks[0][0] >= 0.6


async def test_streaming_paces_text_and_times_from_the_first_chunk(verba_server) -> None:
    backend = ToneBackend(faults=Faults(first_delay=0.1))
    srv = await verba_server("--sentence-pause", "0", backends=[backend])  # only the tone
    text = "One two three four five. Six seven eight."
    trace = await measure_streaming(srv.uri, text, chunk_words=2, chunk_delay=0.15)
    assert trace.ok, trace.error
    # Chunks: "One two" " three four" " five. Six" " seven eight." at 0, .15, .3, .45 s,
    # then the synthesize-stop marker.
    times = [t for t, _n in trace.sent]
    assert [n for _t, n in trace.sent] == [7, 11, 10, 13, 0]
    assert times[0] == 0.0
    for i, t in enumerate(times[:4]):
        assert 0.15 * i <= t < 0.15 * i + 0.05
    # The first sentence is complete with the third chunk; the backend adds 0.1 s.
    assert 0.3 + 0.1 <= trace.first_audio_s < 0.4 + TOL
    assert trace.done_s >= trace.text_done_s >= 0.45
    assert trace.after_text_s == pytest.approx(trace.done_s - trace.text_done_s)
    # The compatibility `synthesize` is not spoken again: audio for the text once.
    assert trace.audio_s == pytest.approx(tone_seconds(text), abs=0.01)
    assert backend.attempts == ["One two three four five.", "Six seven eight."]


async def test_errors_and_timeouts_are_recorded_not_raised(verba_server) -> None:
    failing = ToneBackend(faults=Faults(fail_before_audio=10))
    srv = await verba_server(backends=[failing])
    trace = await measure_plain(srv.uri, "Hello.")
    assert not trace.ok and "injected failure" in trace.error
    trace = await measure_streaming(srv.uri, "Hello.", chunk_delay=0)
    assert not trace.ok and "injected failure" in trace.error
    assert trace.done_s is not None  # the stream still ended with synthesize-stopped

    stalled = await verba_server(backends=[ToneBackend(faults=Faults(first_delay=5))])
    trace = await measure_plain(stalled.uri, "Hello.", time_limit=0.3)
    assert trace.error == "no audio-stop within 0.3 s" and trace.first_audio_s is None

    trace = await measure_plain(f"tcp://127.0.0.1:{free_port()}", "Hello.")
    assert trace.error.startswith("connection failed")


async def test_warmup_requests_are_not_timed(verba_server) -> None:
    backend = ToneBackend()
    srv = await verba_server(backends=[backend])
    config = BenchConfig(texts=("First one.", "Second one."), runs=3, warmup=2)
    traces = await run_requests(srv.uri, config)
    assert len(traces) == 6
    assert [t.text for t in traces] == ["First one.", "Second one."] * 3
    assert len(backend.attempts) == 2 + 6  # the server did speak the warm-ups


# --- the command line ---------------------------------------------------------------


async def test_cli_against_a_running_server_json_and_plot(verba_server, tmp_path) -> None:
    srv = await verba_server(backends=[ToneBackend(faults=Faults(first_delay=0.2))])
    out = io.StringIO()
    png = tmp_path / "timeline.png"
    code = await amain(["--uri", srv.uri, "--label", "tone", "--runs", "3", "--text", "Hi there.",
                        "--streaming", "--chunk-delay", "0.05", "--json", "--plot", str(png)],
                       stdout=out)
    assert code == 0
    data = json.loads(out.getvalue())
    (tone,) = data["backends"]
    assert tone["name"] == "tone" and len(tone["requests"]) == 3
    assert all(r["streaming"] for r in tone["requests"])
    # "Hi there." is complete with the first chunk: first audio = the injected 0.2 s.
    assert 0.2 <= tone["summary"]["first_audio_p50"] < 0.2 + TOL
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_cli_starts_servers_and_skips_those_that_fail(tmp_path) -> None:
    out = io.StringIO()
    # remote without --remote-uri makes the server refuse to start.
    code = await amain(["--backend", "espeak,remote", "--runs", "1", "--warmup", "0",
                        "--text", "Hello.", "--quiet",
                        f"--server-arg=--data-dir={tmp_path}"], stdout=out)
    assert code == 1  # one backend asked for was not measured
    lines = out.getvalue().splitlines()
    espeak_row = next(ln for ln in lines if ln.startswith("| espeak"))
    assert [c.strip() for c in espeak_row.strip("|").split("|")][1:3] == ["1", "0"]
    skipped = next(ln for ln in lines if ln.startswith("skipped remote:"))
    assert "--remote-uri" in skipped


async def test_cli_in_process_server(tmp_path) -> None:
    out = io.StringIO()
    code = await amain(["--backend", "espeak", "--in-process", "--runs", "2", "--text",
                        "Hello.", "--json", "-", f"--server-arg=--data-dir={tmp_path}"],
                       stdout=out)
    assert code == 0
    (espeak,) = json.loads(out.getvalue())["backends"]
    assert espeak["summary"]["requests"] == 2 and espeak["summary"]["audio_s"] > 0.2


async def test_cli_usage_errors() -> None:
    with pytest.raises(SystemExit) as info:
        await amain([])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        await amain(["--uri", "tcp://127.0.0.1:1", "--backend", "espeak"])
    with pytest.raises(SystemExit):
        await amain(["--backend", "espeak", "--runs", "0"])


async def test_fake_edge_script_measures_edge_offline(tmp_path) -> None:
    script = importlib.import_module("tools.benchmarks.bench_fake_edge")
    out = tmp_path / "edge.json"
    # One warm-up: a cold first request (first connection, first decoder) on a loaded
    # machine took 0.68 s once; this is about the fake's delay, not about cold starts.
    code = await script.run(["--pace", "0.01", "--first-delay", "0.25", "--runs", "1",
                             "--warmup", "1", "--text", "Hello there.", "--json", str(out),
                             "--quiet"])
    assert code == 0
    (edge,) = json.loads(out.read_text())["backends"]
    assert edge["name"] == "edge" and edge["summary"]["errors"] == 0
    # The fake's injected service delay shows up as the time to first audio.
    assert 0.25 <= edge["summary"]["first_audio_p50"] < 0.25 + 0.3


async def test_plot_without_matplotlib_names_the_extra_before_running(
    verba_server, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    srv = await verba_server(backends=[ToneBackend()])
    with pytest.raises(SystemExit) as exit_info:
        await amain(["--uri", srv.uri, "--runs", "1", "--plot", "out.png"])
    assert exit_info.value.code == 2
    assert "pip install 'wyoming-verba[bench]'" in capsys.readouterr().err


def test_underrun_counts_the_silence_a_real_time_player_inserts() -> None:
    from wyoming_verba.bench.measure import underrun

    assert underrun([]) == 0.0
    assert underrun([(0.0, 1.0), (0.5, 1.0), (1.9, 0.5)]) == 0.0  # always ahead
    assert underrun([(0.0, 0.5), (0.8, 0.5)]) == pytest.approx(0.3)  # ran dry 0.3 s
    # A late chunk resets the clock: the next one is measured from its own end.
    assert underrun([(0.0, 0.5), (1.0, 0.5), (1.6, 0.5)]) == pytest.approx(0.6)


async def test_a_backend_slower_than_real_time_shows_underrun(verba_server) -> None:
    slow = ToneBackend(faults=Faults(chunk_delay=0.3))  # ~0.1 s of audio per 0.3 s
    srv = await verba_server("--sentence-pause", "0", backends=[slow])
    trace = await measure_plain(srv.uri, "one two three four five six seven eight")
    assert trace.ok and trace.underrun_s > 0.2
    fast = await verba_server("--sentence-pause", "0", backends=[ToneBackend()])
    assert (await measure_plain(fast.uri, "one two three four")).underrun_s < 0.01
