"""Which soxr quality speech needs: accuracy and cost of each, for the server's conversions.

    python -m tools.benchmarks.resampling [--rates 22050:24000,16000:24000]

For each conversion (espeak-ng and Piper make 22,050 Hz, the stream is 24 kHz by default) and
each soxr quality, streamed in 200 ms blocks through a stateful stream (`ResampleStream`), as
the server converts:
- passband: the largest level error of pure tones from 100 Hz to 10 kHz (speech's band; to
  90 % of the input's Nyquist frequency when that is lower);
- image: the strongest component above the input's Nyquist frequency, relative to the tone
  (what the resampler adds that was never in the input);
- cost: CPU time to convert one minute of audio."""

from __future__ import annotations

import argparse
import time

import numpy as np
import soxr

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
BLOCK_S = 0.2
REPEAT = 7  # the cost is the fastest of these (a shared machine)


def stream(samples: np.ndarray, rate: int, target: int, quality: str) -> np.ndarray:
    resampler = soxr.ResampleStream(rate, target, 1, dtype="float32", quality=quality)
    block = int(rate * BLOCK_S)
    pieces = [resampler.resample_chunk(samples[i:i + block])
              for i in range(0, samples.size, block)]
    pieces.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(pieces)


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def spectrum(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    x = x[len(x) // 4: -len(x) // 4]  # the steady middle
    window = np.hanning(x.size)
    mags = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2)
    return np.fft.rfftfreq(x.size, 1 / rate), mags


def measure(rate: int, target: int, quality: str) -> tuple[float, float, float]:
    worst_pass = 0.0
    top = min(10000, 0.9 * min(rate, target) / 2)  # speech's band, below the input's Nyquist
    for freq in (100, 300, 1000, 3000, 6000, 8000, 10000):
        if freq > top:
            continue
        out = stream(tone(freq, rate), rate, target, quality)
        freqs, mags = spectrum(out, target)
        level = mags[np.argmin(np.abs(freqs - freq))]
        worst_pass = max(worst_pass, abs(20 * np.log10(level / 0.5)))
    worst_image = -300.0
    nyquist = min(rate, target) / 2
    for freq in (0.7 * nyquist, 0.9 * nyquist, 0.95 * nyquist):
        out = stream(tone(freq, rate), rate, target, quality)
        freqs, mags = spectrum(out, target)
        above = mags[freqs > nyquist + 50]
        if above.size:
            worst_image = max(worst_image, 20 * np.log10(above.max() / 0.5 + 1e-30))
    minute = np.random.default_rng(0).standard_normal(rate * 60).astype(np.float32) * 0.1
    costs = []
    for _ in range(REPEAT):
        started = time.process_time()
        stream(minute, rate, target, quality)
        costs.append((time.process_time() - started) * 1000)
    return worst_pass, worst_image, min(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="22050:24000,16000:24000")
    args = parser.parse_args()
    print("| conversion | quality | passband error | strongest image | CPU per "
          "minute of audio |")
    print("|---|---|---|---|---|")
    for pair in args.rates.split(","):
        rate, target = (int(r) for r in pair.split(":"))
        for quality in QUALITIES:
            passband, image, cost = measure(rate, target, quality)
            image_text = f"{image:.0f} dBc" if image > -300 else "none"
            print(f"| {rate} → {target} Hz | {quality} | {passband:.3f} dB | {image_text} "
                  f"| {cost:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
