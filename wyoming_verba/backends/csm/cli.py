"""`wyoming-verba csm-voices`: make, list, audition and delete CSM house voices.

Every server flag applies (`--data-dir`, `--csm-model`, `--csm-device`, `--csm-voices`,
`--speaker`, `--csm-seed`, ...), so the command sees the voices the server would."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...audio import resample
from ...pcm import Pcm, to_float_mono
from ...settings import Settings, SettingsError, load_settings
from ..base import BackendError, Utterance
from . import house_voices as house
from . import voices as csm_voices
from .house_voices import STORE_DIR, HouseVoice, HouseVoiceStore

PROG = "wyoming-verba csm-voices"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="CSM house voices: a reference take made once per voice "
        "without a clip and kept in the data directory (every server flag applies).")
    sub = p.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="make (again) house voices with CSM, or from another "
                          "backend's voice")
    make.add_argument("names", nargs="*", metavar="NAME",
                      help="voices to make (default: every configured voice without a clip)")
    make.add_argument("--speaker", type=int, help="CSM speaker id of a new NAME (default "
                      "0; a configured voice and speaker-N keep their own)")
    make.add_argument("--from", dest="source", metavar="BACKEND[:VOICE]",
                      help="take the reference from another backend's voice, e.g. "
                      "piper:en_US-joe-medium, so failover keeps a similar voice")
    sub.add_parser("list", help="list the house voices")
    audition = sub.add_parser("audition", help="write a house voice's take to a WAV file")
    audition.add_argument("name", metavar="NAME")
    audition.add_argument("-o", "--output", type=Path, help="default: NAME.wav")
    delete = sub.add_parser("delete", help="delete house voices (made again at the next "
                            "start while --csm-house-voices is on)")
    delete.add_argument("names", nargs="+", metavar="NAME")
    return p


def main(argv: Sequence[str]) -> int:
    args, rest = parser().parse_known_args(list(argv))
    try:
        settings = load_settings(rest)
    except SettingsError as exc:
        print(f"wyoming-verba: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO,
                        format=settings.log_format)
    store = HouseVoiceStore(settings.data_dir / STORE_DIR)
    if args.command == "list":
        return list_voices(store)
    if args.command == "audition":
        return audition(store, args.name, args.output)
    if args.command == "delete":
        return delete(store, args.names)
    if args.source:
        if len(args.names) != 1:
            print(f"{PROG} make --from: name exactly one voice", file=sys.stderr)
            return 2
        return asyncio.run(make_from(settings, store, args.names[0], args.source,
                                     args.speaker or 0))
    return asyncio.run(make(settings, args.names, args.speaker))


def describe(voice: HouseVoice) -> str:
    seed = "" if voice.seed is None else f", seed {voice.seed}"
    made = voice.source + (f" ({voice.model})" if voice.model else "")
    return (f"{voice.name}: speaker {voice.speaker}, {voice.seconds:.1f} s, {voice.language}, "
            f"from {made}{seed}")


def list_voices(store: HouseVoiceStore) -> int:
    voices = store.all()
    if not voices:
        print(f"no house voices in {store.root}")
    for voice in voices:
        print(describe(voice))
    return 0


def audition(store: HouseVoiceStore, name: str, output: Path | None) -> int:
    voice = store.get(name)
    if voice is None:
        print(f"no house voice {name!r} in {store.root}", file=sys.stderr)
        return 1
    output = output or Path(f"{name}.wav")
    shutil.copyfile(voice.audio, output)
    print(f"wrote {output} ({voice.seconds:.2f} s): \"{voice.text}\"")
    print(f"to hear it say something else: wyoming-verba say --backend csm --voice {name} "
          "\"Your text.\"")
    return 0


def delete(store: HouseVoiceStore, names: list[str]) -> int:
    code = 0
    for name in names:
        if store.delete(name):
            print(f"deleted {name}")
        else:
            print(f"no house voice {name!r} in {store.root}", file=sys.stderr)
            code = 1
    return code


async def make(settings: Settings, names: list[str], speaker: int | None) -> int:
    from .backend import CsmBackend

    # the command makes what it is asked for, not what the start-up would make
    backend = CsmBackend(dataclasses.replace(settings, csm_house_voices="off"))
    try:
        await backend.start()
        missing = [spec.name for spec in backend._without_clip()]
        failed = 0
        for name in names or missing:
            configured = _configured(backend._specs, name)
            if configured is not None and configured.has_clip:
                print(f"{name} has its own reference clip ({configured.audio})",
                      file=sys.stderr)
                failed += 1
                continue
            if configured is None:
                own = speaker if speaker is not None else 0
            elif speaker is not None and speaker != configured.speaker:
                # it would never prompt that voice: the speaker ids would not match
                print(f"{name} is speaker {configured.speaker}; --speaker is for new names",
                      file=sys.stderr)
                failed += 1
                continue
            else:
                own = configured.speaker
            voice = await backend.make_house_voice(name, own)
            if voice is None:
                print(f"{name}: no take passed the check (see the log)", file=sys.stderr)
                failed += 1
            else:
                print(f"made {describe(voice)}")
        return 1 if failed else 0
    except BackendError as exc:
        print(f"wyoming-verba: {exc}", file=sys.stderr)
        return 1
    finally:
        await backend.stop()


def _configured(specs: list[csm_voices.VoiceSpec], name: str) -> csm_voices.VoiceSpec | None:
    for spec in specs:
        if spec.name.lower() == name.lower():
            return spec
    return csm_voices.parse_raw(name)


async def make_from(settings: Settings, store: HouseVoiceStore, name: str, source: str,
                    speaker: int) -> int:
    """The reference spoken by another backend's voice, kept as the house voice `name`."""
    from ..factory import ENGINES, create_backend

    engine, _, voice_name = source.partition(":")
    if engine not in ENGINES or engine == "csm":
        print(f"--from {source}: use another backend ({', '.join(set(ENGINES) - {'csm'})})",
              file=sys.stderr)
        return 2
    other = create_backend(engine, settings)
    try:
        await other.start()
        voice = other.find_voice(voice_name) if voice_name else other.default_voice
        if voice is None:
            print(f"--from {source}: {engine} has no voice {voice_name!r}", file=sys.stderr)
            return 1
        blocks = [chunk async for chunk in other.synthesize(
            house.REFERENCE_TEXT, voice, None, Utterance("csm-voices")) if isinstance(chunk, Pcm)]
    except BackendError as exc:
        print(f"--from {source}: {exc}", file=sys.stderr)
        return 1
    finally:
        await other.stop()
    samples = _as_24k(blocks)
    problem = house.check_reference(samples)
    if problem:
        print(f"--from {source}: the take is unusable: {problem}", file=sys.stderr)
        return 1
    made = store.save(name, samples, text=house.REFERENCE_TEXT, speaker=speaker,
                      language=voice.language or csm_voices.DEFAULT_LANGUAGE,
                      source=f"{engine}:{voice.name}")
    print(f"made {describe(made)}")
    return 0


def _as_24k(blocks: list[Pcm]) -> np.ndarray:
    """One backend's blocks (one format) as float32 24 kHz mono, resampled in one go."""
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    first = blocks[0]
    pcm = Pcm(b"".join(b.audio for b in blocks), first.rate, first.width, first.channels)
    return to_float_mono(resample(pcm, house.SAMPLE_RATE))
