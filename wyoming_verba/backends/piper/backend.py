"""Piper (piper-tts 1.8, onnxruntime): a natural voice with no GPU and no network.

Scheduling, the reason this beats wyoming-piper under load: synthesis never runs on the
event loop (so `describe` stays instant), and every job is ONE sentence, run by the
deadline-ordered `SentencePool` (see `pool`): a newcomer's first sentence overtakes the
rest of a long reply, and the long reply still gets each sentence before it is needed.

Pool shape: one worker per core (up to 8). A sentence that runs alone uses the voice's
wide onnxruntime session, min(cores, 4) intra-op threads: its earliest audio. A sentence
that starts while others run or wait uses a one-thread session of the same voice (built
when sentences first overlap, kept from then on): the cores are busy anyway, and
one thread a sentence spends no CPU handing work between threads. On 2 cores two
sentences at once served ~1.4x the sentences/s on one-thread sessions that they did
sharing the wide one (`tools/benchmarks/piper_sessions.py`; the README's Piper section).

A voice named but missing is downloaded in the background (`download`); the request
waits --piper-download-wait seconds for it, then raises BackendBusy so the chain lets the
next backend speak (without counting a failure) while the download goes on. Later
requests use the voice as soon as its files are in place."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...languages import bcp47
from ...pcm import Pcm, float_to_int16
from ...settings import Settings
from ..base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendUnavailable,
    CancelToken,
    Chunk,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
    find_voice_for_language,
)
from ..memory import release_freed_memory
from ..threads import cpu_count
from .download import DownloadProgress, VoiceDownloader
from .pool import SentencePool, reply_deadline
from .voices import (
    BUNDLED_VOICE,
    VOICE_NAME,
    VoiceConfigError,
    VoiceDirectory,
    VoiceFiles,
    language_from_name,
    read_voice_config,
    speakers_from_config,
)

_LOGGER = logging.getLogger(__name__)

MAX_WORKERS = 8
MAX_THREADS = 4  # intra-op threads of a session: wider ones stop scaling
STOP_JOIN_S = 0.5  # how long stop() waits for a sentence in synthesis (shutdown is bounded)
WARMUP_TEXT = "Hello."


class VoiceBroken(VoiceNotFound):
    """One voice's files are unusable (corrupt or truncated model). A problem with that
    voice, not with Piper: the chain hands the sentence on without tripping Piper's
    breaker, so the healthy voices keep speaking."""

    code = "voice-broken"


def worker_plan(cores: int | None) -> tuple[int, int]:
    """(workers, intra-op threads of a voice's session) for this many cores."""
    cores = max(1, cores or 1)
    return min(cores, MAX_WORKERS), min(cores, MAX_THREADS)


@dataclass
class _Loaded:
    files: VoiceFiles
    voice: Any  # piper.PiperVoice (imported lazily: piper is an optional extra), wide session
    # Builds the same voice on a one-thread session; None when the wide one has one thread
    # (or runs on a GPU), or when building failed.
    make_narrow: Callable[[], Any] | None = None
    narrow: Any = None
    builder: threading.Thread | None = None
    _building: threading.Lock = field(default_factory=threading.Lock)
    # The inputs of a one-word run that ends by handing the session's arena back.
    shrink_feeds: dict[str, np.ndarray] = field(default_factory=dict)

    def voice_for(self, crowded: bool) -> Any:
        """The voice to run a sentence on (in a pool worker): the one-thread session for a
        crowded sentence once it exists. The first crowded sentence starts building it in
        its own thread (about 0.35 s) and runs on the wide one, as do any that come
        meanwhile: nobody's sentence waits for it."""
        if not crowded:
            return self.voice
        if self.narrow is None and self.make_narrow is not None:
            with self._building:
                if self.builder is None:
                    self.builder = threading.Thread(target=self._build_narrow, daemon=True,
                                                    name=f"piper-narrow-{self.files.name}")
                    self.builder.start()
        return self.narrow or self.voice

    def _build_narrow(self) -> None:
        assert self.make_narrow is not None
        started = time.monotonic()
        try:
            self.narrow = self.make_narrow()
        except Exception:  # the wide session still speaks: nothing fails over this
            _LOGGER.warning("Piper voice %s: no one-thread session; overlapping sentences "
                            "share the wide one", self.files.name, exc_info=True)
            self.make_narrow = None
            return
        _LOGGER.info("Piper voice %s: one-thread session for overlapping sentences built in "
                     "%.0f ms", self.files.name, 1000 * (time.monotonic() - started))

    def voices(self) -> list[Any]:
        return [v for v in (self.voice, self.narrow) if v is not None]


@dataclass
class _Download:
    task: asyncio.Task[VoiceFiles]
    progress: DownloadProgress = field(default_factory=DownloadProgress)
    cancel: threading.Event = field(default_factory=threading.Event)


class PiperBackend(Backend):
    name = "piper"
    typical_loudness = -19.6  # LUFS (joe-medium), measured by tools/benchmarks/loudness.py
    normalizes_text = True  # espeak-ng phonemes: misses units, money after the number, times

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        dirs = settings.data_dirs or (settings.data_dir,)
        self._dirs = VoiceDirectory(tuple(Path(d) for d in dirs))
        self._downloader = VoiceDownloader(settings.piper_download_url, settings.data_dir)
        self._workers, self._threads = worker_plan(cpu_count())
        self._keepalive_s = max(0.05, settings.sentence_timeout / 4)
        self._pool: SentencePool | None = None
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._builders: list[threading.Thread] = []  # of unloaded voices' one-thread sessions
        self._load_locks: dict[str, asyncio.Lock] = {}
        # model path -> ((mtime_ns, size), reason): a corrupt file is not retried until it changes
        self._broken: dict[Path, tuple[tuple[int, int], str]] = {}
        self._downloads: dict[str, _Download] = {}
        self._providers: list[str] = ["CPUExecutionProvider"]
        self._warned_speakers: set[tuple[str, str]] = set()
        # The repository's voices (name -> Voice), once it answered: offered as installed,
        # downloaded on first use, as wyoming-piper users know them.
        self._catalogue: dict[str, Voice] = {}
        self._catalogue_task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await asyncio.to_thread(_import_piper)
        except ImportError as exc:
            raise BackendUnavailable(
                f"piper-tts is not installed ({exc}): pip install 'wyoming-verba[piper]'",
                backend=self.name,
            ) from exc
        self._providers = _providers(self.settings.piper_cuda)
        self._pool = SentencePool(self._workers, trim=self._release_memory)
        if self.settings.piper_download:
            self._catalogue_task = asyncio.create_task(self._read_catalogue(),
                                                       name="piper-catalogue")
        wanted = self.settings.piper_voice
        files = await asyncio.to_thread(self._dirs.find, wanted)
        if files is None and self.settings.piper_download and VOICE_NAME.match(wanted):
            _LOGGER.info("Piper voice %s is not in %s: downloading it in the background",
                         wanted, ", ".join(map(str, self._dirs.data_dirs)))
            self._start_download(wanted)
        elif files is None:
            _LOGGER.warning("Piper voice %s not found in %s", wanted,
                            ", ".join(map(str, self._dirs.data_dirs)))
        default = self.default_voice
        if default is None:
            if wanted in self._downloads:
                return  # nothing to speak with until the download lands
            raise BackendUnavailable(
                f"no Piper voice found in {', '.join(map(str, self._dirs.data_dirs))} "
                f"(want {wanted}.onnx + {wanted}.onnx.json) and downloads are off",
                backend=self.name,
            )
        try:
            await self._loaded_voice(default.name)  # load and warm up now, not on the first request
        except BackendError as exc:
            if self.default_voice is None:  # that was the only voice
                raise BackendUnavailable(str(exc), backend=self.name) from exc
            _LOGGER.error("%s", exc)
        _LOGGER.info("Piper ready: voice %s, %d worker(s) on %d thread(s), %s",
                     self.default_voice.name if self.default_voice else "-",
                     self._workers, self._threads, self._providers[0])

    async def stop(self) -> None:
        if self._catalogue_task is not None:
            self._catalogue_task.cancel()
            await asyncio.wait({self._catalogue_task})
        for job in self._downloads.values():
            job.cancel.set()
            job.task.cancel()
        self._downloads.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
            builders = [*self._builders, *(v.builder for v in self._loaded.values()
                                           if v.builder is not None)]
            if not await asyncio.to_thread(_join, pool, builders, STOP_JOIN_S):
                # Its voice stays loaded: freeing a session under a running thread crashes.
                _LOGGER.warning("Piper is still finishing a sentence; exiting without it")
                return
        self._loaded.clear()

    def _release_memory(self) -> None:
        """The pool went idle (runs in one of its workers): every loaded voice's arenas,
        then the C heap's free pages, back to the OS. Under load the arena keeps its
        buffers, so a sentence reuses them instead of faulting in fresh pages."""
        for loaded in list(self._loaded.values()):
            try:
                _shrink_arena(loaded)
            except Exception:  # never worth ending a worker over
                _LOGGER.debug("could not shrink %s's arena", loaded.files.name, exc_info=True)
        release_freed_memory()

    # --- voices ------------------------------------------------------------------------

    def voices(self) -> list[Voice]:
        listed = []
        for files in self._dirs.scan().values():
            voice = files.voice()
            if self._broken_reason(files) is not None:
                voice = replace(voice, installed=False)
            listed.append(voice)
        present = {v.name for v in listed}
        if self.settings.piper_download:
            for voice in self._catalogue.values():
                if voice.name not in present:
                    present.add(voice.name)
                    listed.append(voice)
        missing = [self.settings.piper_voice] if self.settings.piper_download else []
        for name in [*missing, *self._downloads]:
            if name not in present and VOICE_NAME.match(name):
                present.add(name)
                listed.append(_downloadable(name))
        return listed

    def native_rate(self) -> int | None:
        default = self.default_voice  # a voice on disk: in the scan it was picked from
        files = self._dirs.scan().get(default.name) if default is not None else None
        return files.sample_rate if files is not None else None

    def _on_disk(self) -> list[Voice]:
        return [v for v in self.voices() if v.installed and v.name in self._dirs.scan()]

    @property
    def default_voice(self) -> Voice | None:
        installed = self._on_disk()  # never a voice that would have to be downloaded first
        for wanted in (self.settings.piper_voice, BUNDLED_VOICE):
            for voice in installed:
                if voice.name == wanted:
                    return voice
        return installed[0] if installed else None

    def find_voice(self, name: str | None = None, language: str | None = None) -> Voice | None:
        if not name and language:  # a stand-in: a voice on disk, not a download
            return find_voice_for_language(self._on_disk(), language)
        found = super().find_voice(name, language)
        if found is None and name and self.settings.piper_download and VOICE_NAME.match(name):
            return _downloadable(name)  # fetched when first spoken
        return found

    # --- speaking ----------------------------------------------------------------------

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        cancel = utterance.cancel
        cancel.raise_if_cancelled()
        loaded = await self._loaded_voice(voice.name)
        config = self._synthesis_config(loaded, speaker)
        pool = self._pool
        if pool is None:
            raise BackendUnavailable("Piper is not started", backend=self.name)
        rate = loaded.files.sample_rate
        silence = bytes(2 * int(rate * self.settings.piper_sentence_silence))
        reply = utterance.state.setdefault(self.name, {"start": time.monotonic(), "audio": 0.0})
        # One job per sentence. The first job also phonemizes the text, so the number of
        # sentences is known and the last one needs no extra turn (a whole queue wait
        # under load) just to learn it was the last.
        pending: list[list[str]] | None = None
        while pending is None or pending:
            job = pool.submit(reply_deadline(reply), _speak_next, loaded, pool.crowded, text,
                              pending, config, cancel)
            waiting = asyncio.wrap_future(job)
            try:
                # Queued behind other replies' sentences is waiting, not hanging: an empty
                # block now and then keeps the chain's --sentence-timeout from failing it.
                while not job.running() and not waiting.done():
                    await asyncio.wait({waiting}, timeout=self._keepalive_s)
                    cancel.raise_if_cancelled()
                    if not job.running() and not waiting.done():
                        yield Pcm(b"", rate)
                audio, pending = await waiting
            finally:
                waiting.cancel()  # a reply gone while queued: its job is dropped unrun
            cancel.raise_if_cancelled()
            if audio:
                audio += silence
                reply["audio"] += len(audio) / (2 * rate)
                yield Pcm(audio, rate, last=not pending)

    def _synthesis_config(self, loaded: _Loaded, speaker: str | None) -> Any:
        from piper import SynthesisConfig

        s = self.settings
        return SynthesisConfig(
            speaker_id=self._speaker_id(loaded, speaker or s.speaker, explicit=bool(speaker)),
            length_scale=s.piper_length_scale,
            noise_scale=s.piper_noise_scale,
            noise_w_scale=s.piper_noise_w,
        )

    def _speaker_id(self, loaded: _Loaded, speaker: str | None, explicit: bool) -> int | None:
        """A speaker name (or id) → the model's speaker id; None = the voice's default."""
        config = loaded.voice.config
        if not speaker or config.num_speakers <= 1:
            return None
        if speaker in config.speaker_id_map:
            return int(config.speaker_id_map[speaker])
        if speaker.isdigit() and int(speaker) < config.num_speakers:
            return int(speaker)
        key = (loaded.files.name, speaker)
        if explicit and key not in self._warned_speakers:  # --speaker may be meant for CSM
            self._warned_speakers.add(key)
            _LOGGER.warning("Piper voice %s has no speaker %r; using its default",
                            loaded.files.name, speaker)
        return None

    # --- loading -----------------------------------------------------------------------

    async def _loaded_voice(self, name: str) -> _Loaded:
        loaded = self._loaded.get(name)
        if loaded is not None:
            self._loaded.move_to_end(name)
            return loaded
        files = await asyncio.to_thread(self._dirs.find, name)
        if files is None:
            files = await self._wait_for_download(name)
        async with self._load_locks.setdefault(files.name, asyncio.Lock()):
            loaded = self._loaded.get(files.name)
            if loaded is None:
                loaded = await self._load(files)
                self._loaded[files.name] = loaded
                while len(self._loaded) > self.settings.piper_max_loaded_voices:
                    evicted, gone = self._loaded.popitem(last=False)
                    if gone.builder is not None and gone.builder.is_alive():
                        self._builders.append(gone.builder)  # stop() still waits for it
                    _LOGGER.info("unloaded Piper voice %s (least recently used)", evicted)
            return loaded

    async def _load(self, files: VoiceFiles) -> _Loaded:
        reason = self._broken_reason(files)
        if reason is not None:
            raise VoiceBroken(reason, backend=self.name)
        try:
            voice = await asyncio.to_thread(_load_voice, files, self._providers, self._threads)
        except Exception as exc:  # onnxruntime raises its own types for bad models
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = (
                f"Piper voice {files.name} could not be loaded from {files.model}: {detail}. "
                "The file is probably corrupt or truncated: delete it (it is downloaded "
                "again on the next request) or replace it"
            )
            try:
                stat = files.model.stat()
                self._broken[files.model] = ((stat.st_mtime_ns, stat.st_size), reason)
            except OSError:
                pass
            _LOGGER.error("%s", reason)
            raise VoiceBroken(reason, backend=self.name) from exc
        _LOGGER.info("loaded Piper voice %s (%d Hz, %d speaker(s))", files.name,
                     files.sample_rate, max(1, len(files.speakers)))
        narrow = None
        if self._threads > 1 and self._providers[0] == "CPUExecutionProvider":
            narrow = functools.partial(_load_voice, files, self._providers, 1)
        return _Loaded(files, voice, make_narrow=narrow)

    def _broken_reason(self, files: VoiceFiles) -> str | None:
        known = self._broken.get(files.model)
        if known is None:
            return None
        try:
            stat = files.model.stat()
        except OSError:
            return known[1]
        if (stat.st_mtime_ns, stat.st_size) == known[0]:
            return known[1]
        del self._broken[files.model]  # the file was replaced: try it again
        return None

    # --- downloading -------------------------------------------------------------------

    async def _read_catalogue(self) -> None:
        """Read the repository's voice list; while it does not answer, only the voices on
        disk are offered, and it is asked again after each cool-down."""
        while True:
            try:
                entries = await asyncio.to_thread(self._downloader.catalogue)
            except BackendError as exc:
                _LOGGER.info("Piper voice repository not readable (%s): offering the voices "
                             "on disk only", exc)
                await asyncio.sleep(max(self.settings.cooldown, 5.0))
                continue
            self._catalogue = {name: _catalogue_voice(name, entry)
                               for name, entry in sorted(entries.items())}
            _LOGGER.info("Piper voice repository: %d voices, downloaded on first use",
                         len(self._catalogue))
            return

    def _start_download(self, name: str) -> _Download:
        job = self._downloads.get(name)
        if job is not None:
            return job
        progress, cancel = DownloadProgress(), threading.Event()

        async def run() -> VoiceFiles:
            try:
                model, config = await asyncio.to_thread(
                    self._downloader.download, name, cancel, progress)
                self._dirs.forget(model.parent)
                try:
                    return await asyncio.to_thread(read_voice_config, name, model, config)
                except VoiceConfigError as exc:
                    raise BackendUnavailable(str(exc), backend=self.name) from exc
            finally:
                self._downloads.pop(name, None)  # a failed download is retried next time

        task = asyncio.get_running_loop().create_task(run(), name=f"piper-download-{name}")
        task.add_done_callback(_log_download_result)
        job = _Download(task, progress, cancel)
        self._downloads[name] = job
        return job

    async def _wait_for_download(self, name: str) -> VoiceFiles:
        if not self.settings.piper_download:
            raise VoiceNotFound(
                f"Piper voice {name} is not in {', '.join(map(str, self._dirs.data_dirs))} "
                "and downloads are off (--no-piper-download)", backend=self.name)
        job = self._start_download(name)
        try:
            # shield: a request that gives up must not cancel the download for everyone
            return await asyncio.wait_for(asyncio.shield(job.task),
                                          self.settings.piper_download_wait)
        except TimeoutError:
            raise BackendBusy(
                f"Piper voice {name} is downloading ({job.progress.describe()}); "
                "another backend speaks until it is ready", backend=self.name) from None


# --- worker-thread helpers (no event loop here) ------------------------------------------


def _join(pool: SentencePool, builders: list[threading.Thread], timeout: float) -> bool:
    """Wait for the sentences in synthesis and any session being built; True when all ended."""
    deadline = time.monotonic() + timeout
    done = pool.join(timeout)
    for thread in builders:
        thread.join(max(0.0, deadline - time.monotonic()))
    return done and not any(thread.is_alive() for thread in builders)


def _speak_next(
    loaded: _Loaded, crowded: Callable[[], bool], text: str, pending: list[list[str]] | None,
    config: Any, cancel: CancelToken,
) -> tuple[bytes, list[list[str]]]:
    """Speak the next sentence (one pool job): (its audio, the sentences still to speak).
    `pending` None = phonemize `text` first (piper splits it into sentences)."""
    if cancel.cancelled:  # cancelled while queued: give the turn to someone else
        raise SynthesisCancelled("synthesis cancelled")
    try:
        voice = loaded.voice_for(crowded())
        if pending is None:
            pending = [phonemes for phonemes in voice.phonemize(text) if phonemes]
        if not pending:
            return b"", []
        ids = voice.phonemes_to_ids(pending[0])
        audio = voice.phoneme_ids_to_audio(ids, config)
    except Exception as exc:  # piper/onnxruntime/espeak errors become BackendErrors
        raise BackendError(f"Piper failed: {type(exc).__name__}: {exc}", backend="piper") from exc
    return _to_int16(audio), pending[1:]


def _to_int16(audio: np.ndarray) -> bytes:
    """Peak-normalise each sentence to full scale, as piper's own synthesize() does."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:
        return bytes(2 * audio.size)
    return float_to_int16(audio / peak).tobytes()


def _load_voice(files: VoiceFiles, providers: list[str], threads: int) -> Any:
    import json

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # onnxruntime's own spin-waiting between parallel sections: a lone sentence's threads
    # catch the next section without a sleep and a wake-up. Only a lone sentence runs on a
    # wide session; overlapping ones run on the one-thread session, which has no threads to
    # spin, so spinning no longer takes the cores that other requests need (it cost more
    # than half the throughput when every sentence ran here; the 30 us bound used until
    # one-thread sessions came served 0.81-0.95x the requests/s at 1 client, README).
    # A session is shared by all workers (concurrent runs are safe). The one-thread session
    # is a second copy of the model (joe-medium: ~75 MB at rest, ~90 MB more while busy),
    # which is why it is built only once sentences overlap. It is kept from then on: let go
    # whenever the pool idled and built again, RSS grew 45 MB over 1,000 requests (README).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    # onnxruntime's memory arena stays on: without it every run's buffers were fresh pages
    # (about 3,800 page faults a sentence, which took 14 % longer alone). It keeps the
    # largest buffers any sentence needed, so the idle pool hands it back (_shrink_arena).
    options.enable_cpu_mem_arena = True
    session = onnxruntime.InferenceSession(str(files.model), sess_options=options,
                                           providers=providers)
    voice = PiperVoice(session=session, config=config)
    # The first run allocates buffers and loads espeak-ng: pay for it here, not in a reply.
    for _ in voice.synthesize(WARMUP_TEXT):
        pass
    return voice


def _shrink_arena(loaded: _Loaded) -> None:
    """A one-word run that ends with onnxruntime freeing every arena region no tensor uses
    (`memory.enable_memory_arena_shrinkage`): ~30 ms, run only when the pool is idle."""
    import onnxruntime

    voice = loaded.voice
    if not loaded.shrink_feeds:
        ids = voice.phonemes_to_ids(voice.phonemize(WARMUP_TEXT)[0])
        config = voice.config
        feeds: dict[str, np.ndarray] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([config.noise_scale, config.length_scale, config.noise_w_scale],
                               dtype=np.float32),
        }
        if any(i.name == "sid" for i in voice.session.get_inputs()):  # multi-speaker
            feeds["sid"] = np.array([0], dtype=np.int64)
        loaded.shrink_feeds = feeds
    options = onnxruntime.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    for each in loaded.voices():
        each.session.run(None, loaded.shrink_feeds, options)


def _import_piper() -> None:
    import onnxruntime  # noqa: F401
    import piper  # noqa: F401


def _providers(cuda: bool) -> list[str]:
    if not cuda:
        return ["CPUExecutionProvider"]
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    _LOGGER.warning("--piper-cuda: this onnxruntime has no CUDA provider "
                    "(pip install onnxruntime-gpu); using the CPU")
    return ["CPUExecutionProvider"]


def _catalogue_voice(name: str, entry: dict[str, Any]) -> Voice:
    """A voice from voices.json, offered as installed: asking for it downloads it."""
    language = entry.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    tag = bcp47(str(code or "")) or language_from_name(name)
    names = speakers_from_config(entry)
    quality = entry.get("quality")
    description = f"{name} ({quality}), downloaded on first use" if quality else (
        f"{name}, downloaded on first use")
    return Voice(name, (tag,) if tag else (), description, speakers=names)


def _downloadable(name: str) -> Voice:
    return Voice(name, (language_from_name(name),), "downloaded on first use", installed=False)


def _log_download_result(task: asyncio.Task[VoiceFiles]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _LOGGER.error("%s", exc)
