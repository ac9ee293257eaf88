"""The CSM backend: one model on one worker thread, sentences queued, voices kept steady.

All model work (loading, warm-up, clip encoding, generation) runs on a dedicated
single-thread executor, so the GPU runs one generation at a time and the event loop never
blocks. Every sentence taken in and not yet finished is counted (`_in_flight`): one runs,
up to `max_gpu_queue` wait; past that the backend answers BackendBusy and the chain sends
the sentence elsewhere.

Voice consistency: each sentence is generated after the voice prompt (reference clip +
transcript, its KV prefix computed once per voice) and the reply's previous sentences
(text + generated codes, kept in `utterance.state["csm"]`, at most
`csm_context_sentences`). A voice without a clip is prompted with its house voice (a take
of its own, made once and kept in the data directory: `house_voices`)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...pcm import Pcm
from ...settings import Settings
from ..base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendUnavailable,
    Chunk,
    SynthesisCancelled,
    Utterance,
    Voice,
)
from ..threads import iterate_in_thread
from . import voices as csm_voices
from .house_voices import STORE_DIR, HouseVoice, HouseVoiceStore
from .model_text import model_text
from .voices import VoiceSpec

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 24000
WARMUP_TEXT = "Hello, this is a warm-up."
WARMUP_FRAMES = 4
COMPILE_CACHE_DIR = "torch-compile-cache"  # under the data directory
WARMUP_RUNS = 3  # CUDA graphs are recorded on the 2nd/3rd call of a compiled step
RAW_SPEAKERS_LISTED = (0, 1)


class CsmOutOfMemory(BackendUnavailable):
    """CUDA ran out of memory during a sentence; memory was released, try again later."""

    code = "out-of-memory"


class CsmVoicesError(BackendUnavailable):
    """The voices file or a reference clip is unusable: fix the file, then restart."""

    transient = False


class _StartAborted(BackendUnavailable):
    """start() was cancelled or failed: the worker stops loading at its next step."""


class _Slot:
    """One sentence's place in the GPU queue, given back exactly once: by the worker when
    it is done with the sentence, or by the consumer if the worker never began it."""

    def __init__(self, backend: CsmBackend) -> None:
        self._backend = backend
        self._running = False
        self._released = False

    def begin(self) -> bool:
        """Worker: take the sentence on; False if it was abandoned while waiting."""
        with self._backend._lock:
            if self._released:
                return False
            self._running = True
            return True

    def release(self) -> None:
        with self._backend._lock:
            if not self._released:
                self._released = True
                self._backend._in_flight -= 1

    def abandon(self) -> None:
        """Consumer gone: a sentence the worker is running is released when it stops."""
        with self._backend._lock:
            running = self._running and not self._released
        if not running:
            self.release()


@dataclass
class ReplyContext:
    """Per-reply memory: the previous sentences spoken in this voice."""

    voice_key: Any = None
    segments: deque = field(default_factory=deque)


class CsmBackend(Backend):
    name = "csm"
    normalizes_text = True  # a language model: digits and symbols come out unreliably

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csm")
        self._specs: list[VoiceSpec] = []
        self._loaded: Any = None
        self._gen: Any = None
        self._clip_codes: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self._in_flight = 0  # sentences taken in and not finished: 1 running + queued
        self._clips: dict[Any, Any] = {}  # clip path -> float32 24 kHz samples
        self._abort = threading.Event()
        self._closed = False
        self.house = HouseVoiceStore(settings.data_dir / STORE_DIR)
        self._house: dict[str, HouseVoice] = {}  # usable house voices by name

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._specs = csm_voices.load_voices(self.settings.csm_voices)
        except csm_voices.VoicesFileError as exc:
            raise CsmVoicesError(str(exc), backend=self.name) from None
        self._house = {v.name: v for v in self.house.all()
                       if v.source != "csm" or v.model == self.settings.csm_model}
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._load_and_warm)
        except BaseException:
            # Failed, or cancelled while loading (chain.stop() after the start-up grace):
            # the worker stops at its next step and lets go of the model, and nothing
            # waits for it, so a half-loaded CSM neither stays resident nor holds up exit.
            self._abort.set()
            self._close_executor()
            raise

    def _close_executor(self) -> None:
        """Release the model on the worker (after whatever it is doing) and let the
        worker thread end once that is done, without waiting for it here."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._release)
        self._executor.shutdown(wait=False)

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise _StartAborted("CSM start-up was cancelled", backend=self.name)

    def _load_and_warm(self) -> None:
        try:
            self._read_clips()  # bad clips are a setup error: say so before loading 1B weights
            self._check_abort()
            self._load_and_warm_model()
            self._prepare_house_voices()
        except BaseException:
            self._release()
            raise

    def _read_clips(self) -> None:
        for spec in self._specs:
            if spec.audio is not None and spec.audio not in self._clips:
                try:
                    self._clips[spec.audio] = csm_voices.read_clip(spec.audio)
                except csm_voices.VoicesFileError as exc:
                    raise _clip_error(spec, exc) from None

    def _load_and_warm_model(self) -> None:
        from .generator import CsmGenerator
        from .loader import load_model

        s = self.settings
        self._loaded = load_model(s.csm_model, s.csm_device, s.csm_dtype, s.csm_compile)
        if self._loaded.mode == "compiled":
            keep_compile_cache(s.data_dir / COMPILE_CACHE_DIR)
        modes = {"compiled": ["compiled", "eager"]}  # eager has no host syncs either
        for mode in modes.get(self._loaded.mode, ["eager"]):
            self._check_abort()
            self._gen = CsmGenerator(self._loaded.model, self._loaded.tokenizer, mode)
            try:
                self._warm_up()
                break
            except BackendError:
                raise
            except Exception as exc:  # compile/graph trouble: never required for correctness
                _LOGGER.warning("CSM: %s mode failed during warm-up (%s); falling back", mode, exc)
        else:
            raise BackendUnavailable("CSM warm-up failed in every mode", backend=self.name)
        self._check_abort()

    def _warm_up(self) -> None:
        from .generator import Sampling
        from .stopping import StopRules
        from .stream import stream_sentence

        started = time.monotonic()
        # The compiled frame step is built per sampling setting: warm up the one in use.
        sampling = Sampling(self.settings.csm_temperature, self.settings.csm_top_k)
        for spec in self._specs:  # encode every clip now: the first sentence needs no wait
            self._check_abort()
            self._voice_prefix(spec)
        spec = self._default_spec()
        for _ in range(WARMUP_RUNS if self._gen.mode == "compiled" else 1):
            self._check_abort()
            for _pcm in stream_sentence(self._gen, WARMUP_TEXT, spec.speaker,
                                        StopRules(max_frames=WARMUP_FRAMES),
                                        prefix=self._voice_prefix(spec), sampling=sampling):
                pass
        self._sync()
        _LOGGER.info("CSM: ready (%s mode, %s), warm-up took %.1f s", self._gen.mode,
                     self._loaded.device, time.monotonic() - started)

    async def stop(self) -> None:
        self._abort.set()
        if self._closed:  # a failed or cancelled start already released everything
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._release)
        self._executor.shutdown(wait=False)

    def _release(self) -> None:
        self._gen = self._loaded = None  # drop every reference to the weights and caches
        self._clip_codes.clear()
        self._clips.clear()
        _free_memory()

    # --- voices -----------------------------------------------------------------------

    def _raw_ids(self) -> list[int]:
        ids = list(RAW_SPEAKERS_LISTED)
        default = _speaker_id(self.settings.speaker)
        if default is not None:
            ids = [default] + [i for i in ids if i != default]
        return ids

    def native_rate(self) -> int:
        return SAMPLE_RATE  # Mimi's

    def voices(self) -> list[Voice]:
        installed = self._gen is not None
        specs = self._specs + [csm_voices.raw_voice(i) for i in self._raw_ids()]
        specs += self._house_only()
        return [self._as_voice(spec, installed) for spec in specs]

    def _as_voice(self, spec: VoiceSpec, installed: bool = True) -> Voice:
        description = spec.description or (
            f"CSM-1b {spec.name} (speaker {spec.speaker}, reference clip)" if spec.has_clip
            else f"CSM-1b speaker {spec.speaker}")
        if not spec.has_clip and spec.name in self._house:
            description += " (house voice)"
        return Voice(spec.name, (spec.language,), description, installed=installed)

    def _house_only(self) -> list[VoiceSpec]:
        """House voices that are voices of their own (made with `csm-voices make NAME`),
        not the prompt of a configured voice or a raw speaker id."""
        configured = {spec.name.lower() for spec in self._specs}
        return [voice.spec() for name, voice in sorted(self._house.items())
                if name.lower() not in configured and csm_voices.parse_raw(name) is None]

    def _all_specs(self) -> list[VoiceSpec]:
        return self._specs + self._house_only()

    def _without_clip(self) -> list[VoiceSpec]:
        """The configured voices that need a house voice: named ones without a clip and
        the listed raw speaker ids."""
        specs = [spec for spec in self._specs if not spec.has_clip]
        return specs + [csm_voices.raw_voice(i) for i in self._raw_ids()]

    @property
    def default_voice(self) -> Voice | None:
        return self._as_voice(self._default_spec(), self._gen is not None)

    def _default_spec(self) -> VoiceSpec:
        if self.settings.voice:
            try:
                return csm_voices.find(self._all_specs(), self.settings.voice)
            except BackendError:
                pass
        if self._specs:
            return self._specs[0]
        return csm_voices.raw_voice(self._raw_ids()[0])

    def find_voice(self, name: str | None = None, language: str | None = None) -> Voice | None:
        found = super().find_voice(name, language)
        if found is None and name:
            raw = csm_voices.parse_raw(name)
            if raw is not None:  # any raw speaker id works, listed or not
                return self._as_voice(raw, self._gen is not None)
        return found

    # --- synthesis --------------------------------------------------------------------

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        if self._gen is None or self._closed:
            raise BackendUnavailable("CSM is not loaded", backend=self.name)
        spec = csm_voices.find(self._all_specs(), voice.name)
        text = model_text(text)  # only the punctuation CSM reads well
        if not text:
            return
        speaker_id = _speaker_id(speaker)
        if speaker_id is None:
            speaker_id = spec.speaker
        with self._lock:
            # Counted from the moment a sentence is taken in, not when the worker starts
            # it: requests arriving together must see each other.
            if self._in_flight > self.settings.max_gpu_queue:
                raise BackendBusy(f"GPU queue full ({self._in_flight} sentences in flight)",
                                  backend=self.name)
            self._in_flight += 1
        slot = _Slot(self)
        abort = threading.Event()

        def should_stop() -> bool:
            return abort.is_set() or utterance.cancel.cancelled

        try:
            context = utterance.state.get("csm")
            if not isinstance(context, ReplyContext):
                context = utterance.state["csm"] = ReplyContext()
            async with aclosing(iterate_in_thread(
                lambda: self._sentence(text, spec, speaker_id, context, should_stop, slot),
                utterance.cancel, self._executor,
            )) as blocks:
                async for pcm in blocks:
                    yield pcm
        except BackendError:
            raise
        except Exception as exc:  # e.g. the worker was shut down under us
            raise BackendUnavailable(f"CSM failed: {type(exc).__name__}: {exc}",
                                     backend=self.name) from None
        finally:
            abort.set()  # the worker stops at its next frame
            slot.abandon()

    def _sentence(self, text: str, spec: VoiceSpec, speaker: int, context: ReplyContext,
                  should_stop: Any, slot: _Slot) -> Iterator[Pcm]:
        """Runs on the worker thread: one sentence, streamed."""
        try:
            if not slot.begin():  # abandoned while it waited: nothing to do
                raise SynthesisCancelled("synthesis cancelled", backend=self.name)
            yield from self._generate(text, spec, speaker, context, should_stop)
        finally:
            slot.release()

    def _stop_rules(self, text: str, language: str = csm_voices.DEFAULT_LANGUAGE) -> Any:
        from .stopping import FRAME_RATE, StopRules, frame_cap

        s = self.settings
        return StopRules(max_frames=frame_cap(text, s.csm_max_sentence_seconds, language),
                         silence_frames=max(1, round(s.csm_end_silence * FRAME_RATE)))

    def _generate(self, text: str, spec: VoiceSpec, speaker: int, context: ReplyContext,
                  should_stop: Any) -> Iterator[Pcm]:
        import torch

        from .generator import Cancelled, Sampling
        from .stopping import StopState
        from .stream import stream_sentence

        codes: list[Any] = []
        try:
            if should_stop():
                raise SynthesisCancelled("synthesis cancelled", backend=self.name)
            if self._gen is None:
                raise BackendUnavailable("CSM is not loaded", backend=self.name)
            # The voice prompt and the new sentence speak as one speaker: a request's
            # speaker id relabels the prompt too, never just the sentence.
            spec = replace(self._prompt_spec(spec), speaker=speaker)
            key = (spec.name, spec.speaker, spec.audio)
            if context.voice_key != key:  # another voice: its context would mislead
                context.voice_key, context.segments = key, deque()
            s = self.settings
            stop = StopState(self._stop_rules(text, spec.language))
            for audio in stream_sentence(
                self._gen, text, speaker, stop,
                prefix=self._voice_prefix(spec), context=list(context.segments),
                sampling=Sampling(s.csm_temperature, s.csm_top_k), seed=s.csm_seed,
                should_stop=should_stop, codes_out=codes,
            ):
                yield Pcm(audio, SAMPLE_RATE)
            self._remember(context, text, speaker, codes, stop)
        except Cancelled:
            raise SynthesisCancelled("synthesis cancelled", backend=self.name) from None
        except BackendError:
            raise
        except torch.OutOfMemoryError as exc:
            codes.clear()
            _free_memory()
            raise CsmOutOfMemory(f"CUDA out of memory: {exc}".splitlines()[0],
                                 backend=self.name) from None
        except Exception as exc:
            _LOGGER.exception("CSM: sentence failed")
            raise BackendError(f"CSM failed: {type(exc).__name__}: {exc}",
                               backend=self.name) from None

    def _remember(self, context: ReplyContext, text: str, speaker: int, codes: list[Any],
                  stop: Any) -> None:
        """Keep a finished sentence as context for the next one, without its trailing
        silence. A sentence a rule cut off (cap, repetition, silence) or that never spoke
        would teach the next one the same failure: it is not kept."""
        import torch

        from .generator import Segment

        limit = self.settings.csm_context_sentences
        if limit <= 0 or stop.reason != "end" or not stop.heard_speech:
            if codes and stop.reason != "end":
                _LOGGER.debug("CSM: sentence stopped by the %s rule, not kept as context",
                              stop.reason)
            return
        spoken = codes[: max(1, len(codes) - stop.trailing_quiet)]
        context.segments.append(Segment(speaker, text, torch.stack(spoken)))
        while len(context.segments) > limit:
            context.segments.popleft()

    def _prompt_spec(self, spec: VoiceSpec) -> VoiceSpec:
        """The voice as prompted: its own clip, else the house voice made for it."""
        house = None if spec.has_clip else self._house.get(spec.name)
        return house.spec(spec) if house is not None and house.speaker == spec.speaker else spec

    # --- house voices -------------------------------------------------------------------

    def _making_house_voices(self) -> bool:
        mode = self.settings.csm_house_voices
        return mode == "on" or (mode == "auto" and str(self._loaded.device).startswith("cuda"))

    def _prepare_house_voices(self) -> None:
        """Worker, after warm-up: make the missing house voices (when enabled) and encode
        every voice's prompt, so no first sentence waits for either."""
        from .generator import Cancelled

        making = self._making_house_voices()
        for spec in self._without_clip():
            self._check_abort()
            self._house_prefix(self._prompt_spec(spec))
            if making and self._prompt_spec(spec) is spec:
                try:
                    self._make_house_voice(spec)
                except (BackendError, Cancelled):
                    raise
                except Exception as exc:  # e.g. a read-only data directory: CSM still works
                    _LOGGER.warning("CSM voice %s: making its house voice failed (%s: %s)",
                                    spec.name, type(exc).__name__, exc)
            self._house_prefix(self._prompt_spec(spec))
        for spec in self._house_only():
            self._check_abort()
            self._house_prefix(spec)

    def _house_prefix(self, spec: VoiceSpec) -> None:
        """Encode a prompt now; a house voice whose take is unreadable is forgotten (and
        made again where making is on): it is ours, not a setup error."""
        try:
            self._voice_prefix(spec)
        except CsmVoicesError as exc:
            if spec.name not in self._house:
                raise
            _LOGGER.warning("CSM voice %s: house voice unusable, ignored: %s", spec.name, exc)
            self._house = {k: v for k, v in self._house.items() if k != spec.name}

    async def make_house_voice(self, name: str, speaker: int) -> HouseVoice | None:
        """Make (again) the house voice `name` with speaker id `speaker` (the CLI's
        `csm-voices make`); None when no take passed the check."""
        if self._gen is None or self._closed:
            raise BackendUnavailable("CSM is not loaded", backend=self.name)
        loop = asyncio.get_running_loop()
        spec = VoiceSpec(name, speaker)
        return await loop.run_in_executor(self._executor, self._make_house_voice, spec)

    def _make_house_voice(self, spec: VoiceSpec) -> HouseVoice | None:
        """Worker: takes of REFERENCE_TEXT from a fixed seed on; the first that passes
        `check_reference` is kept."""
        import numpy as np

        from . import house_voices as house
        from .generator import Sampling
        from .stopping import FRAME_RATE, StopState
        from .stream import stream_sentence

        s = self.settings
        first = s.csm_seed if s.csm_seed is not None else house.FIRST_SEED
        for seed in range(first, first + house.ATTEMPTS):
            self._check_abort()
            stop = StopState(self._stop_rules(house.REFERENCE_TEXT))
            stop.rules.max_frames = min(stop.rules.max_frames, round(house.MAX_S * FRAME_RATE) + 1)
            pcm = b"".join(stream_sentence(
                self._gen, house.REFERENCE_TEXT, spec.speaker, stop,
                sampling=Sampling(s.csm_temperature, s.csm_top_k), seed=seed,
                should_stop=self._abort.is_set))
            samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
            problem = house.check_reference(samples, stop.reason)
            if problem is None:
                voice = self.house.save(spec.name, samples, text=house.REFERENCE_TEXT,
                                        speaker=spec.speaker, language=spec.language,
                                        seed=seed, model=s.csm_model)
                self._house = {**self._house, spec.name: voice}  # read by other threads
                self._clips.pop(voice.audio, None)  # a take made again: read it afresh
                self._clip_codes.pop(voice.audio, None)
                _LOGGER.info("CSM voice %s: house voice made (seed %d, %.1f s), kept in %s",
                             spec.name, seed, voice.seconds, self.house.root)
                return voice
            _LOGGER.info("CSM voice %s: take with seed %d rejected: %s", spec.name, seed,
                         problem)
        _LOGGER.warning("CSM voice %s: no usable house voice after %d takes; it speaks "
                        "without a prompt (the voice may change between replies). Give it "
                        "a reference clip (--csm-voices) or try `wyoming-verba csm-voices "
                        "make %s`", spec.name, house.ATTEMPTS, spec.name)
        return None

    def _voice_prefix(self, spec: VoiceSpec) -> tuple[Any, int]:
        """KV prefix of the voice prompt: clip encoded and prefilled once per voice."""
        from .generator import Segment

        if not spec.has_clip:
            return None, 0
        if spec.audio not in self._clip_codes:  # the codes do not depend on the speaker
            self._clip_codes[spec.audio] = self._encode_clip(spec)
        codes = self._clip_codes[spec.audio]
        segment = Segment(spec.speaker, spec.text, codes)
        # id(codes): a house voice made again under the same path gets a new prefix
        return self._gen.prefix((spec.name, spec.speaker, spec.audio, id(codes)), [segment])

    def _encode_clip(self, spec: VoiceSpec) -> Any:
        import torch

        assert spec.audio is not None, "only voices with a clip have one to encode"
        samples = self._clips.get(spec.audio)
        if samples is None:
            try:
                samples = self._clips[spec.audio] = csm_voices.read_clip(spec.audio)
            except csm_voices.VoicesFileError as exc:
                raise _clip_error(spec, exc) from None
        codec = self._gen.model.codec_model
        device = next(codec.parameters()).device
        with torch.inference_mode():
            wav = torch.from_numpy(samples).to(device=device, dtype=torch.float32)
            codes = codec.encode(wav.view(1, 1, -1)).audio_codes  # (1, 32, frames)
        _LOGGER.info("CSM voice %s: %.1f s reference clip, %d frames", spec.name,
                     len(samples) / SAMPLE_RATE, codes.shape[-1])
        return codes[0].t().contiguous()

    def _sync(self) -> None:
        import torch

        if self._loaded is not None and str(self._loaded.device).startswith("cuda"):
            torch.cuda.synchronize()


def _speaker_id(value: str | None) -> int | None:
    """A speaker id given as text, or None when it is not a plain number."""
    try:
        return int(value.strip()) if value and value.strip().isdecimal() else None
    except ValueError:  # pragma: no cover - isdecimal() strings always parse
        return None


def _clip_error(spec: VoiceSpec, exc: Exception) -> CsmVoicesError:
    return CsmVoicesError(
        f"CSM voice {spec.name!r}: {exc}. Fix: replace it with a PCM WAV clip (5-20 s of "
        "clear speech, any rate) or remove that voice from --csm-voices", backend="csm")


def keep_compile_cache(folder: Path) -> None:
    """torch.compile's caches (inductor's compiled graphs and kernels, Triton's GPU kernels)
    live under /tmp unless told otherwise, and a container loses /tmp on every restart, so
    every start would compile again from nothing. Kept in the data directory, a restart
    reuses them. A cache the user placed (the environment variable set) is left alone."""
    for variable, sub in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
        if not os.environ.get(variable):
            os.environ[variable] = str(folder / sub)


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
