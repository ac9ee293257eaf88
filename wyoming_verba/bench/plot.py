"""`--plot out.png`: a timeline per backend of one representative request, showing when
text went in and when audio came out (streaming shows as audio before the text ends)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .measure import Trace
from .runner import BackendResult


def representative(traces: Sequence[Trace]) -> Trace | None:
    """The request with the median time to first audio among those of the longest text."""
    ok = [t for t in traces if t.ok and t.first_audio_s is not None]
    if not ok:
        return None
    longest = max(len(t.text) for t in ok)
    same = sorted((t for t in ok if len(t.text) == longest), key=lambda t: t.first_audio_s or 0.0)
    return same[len(same) // 2]


def plot_timeline(results: Sequence[BackendResult], path: Path, title: str = "") -> None:
    import matplotlib  # lazily: only --plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(r.name, t) for r in results if (t := representative(r.traces)) is not None]
    if not shown:
        raise ValueError("nothing to plot: no successful request")
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.6 + 1.3 * len(shown)),
                             sharex=True, squeeze=False)
    for ax, (name, trace) in zip(axes[:, 0], shown, strict=True):
        _draw(ax, name, trace)
    axes[-1, 0].set_xlabel("seconds from the first text sent")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw(ax, name: str, trace: Trace) -> None:
    text_times = [t for t, n in trace.sent if n > 0]
    audio_times = [t for t, n in trace.chunks if n > 0]
    ax.eventplot([audio_times, text_times], lineoffsets=[0, 1], linelengths=0.6,
                 colors=["tab:blue", "tab:green"])
    if trace.streaming and trace.sent:
        ax.axvline(trace.text_done_s, color="tab:green", linestyle=":", linewidth=1)
    first = trace.first_audio_s
    if first is not None:
        ax.axvline(first, color="tab:red", linestyle="--", linewidth=1)
        ax.annotate(f"first audio {first:.3f} s", (first, 0.5), xytext=(4, 0),
                    textcoords="offset points", fontsize=8, color="tab:red")
    if trace.done_s is not None:
        ax.axvline(trace.done_s, color="grey", linewidth=1)
    ax.set_yticks([0, 1], ["audio out", "text in"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_title(f"{name}: {len(trace.text)} chars, {trace.audio_s:.2f} s audio, "
                 f"{len(trace.chunks)} chunks", fontsize=9, loc="left")
