"""Command line: run the server (default), `say` a text into a WAV file, print the
sentences a backend would be given (`text`), compare latencies (`bench`), or manage CSM's
house voices (`csm-voices`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .settings import Settings, SettingsError, load_settings
from .text.lexicon import LexiconError

_LOGGER = logging.getLogger("wyoming_verba")


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO, format=settings.log_format
    )
    if not settings.debug:  # third-party chatter only with --debug
        for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


async def run_server(settings: Settings) -> None:
    from .server import VerbaServer

    server = VerbaServer(settings)
    await server.start(wait_for_backends=False)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stopping.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    _LOGGER.info("shutting down")
    await server.stop()
    for task in (waiter, stopper):
        task.cancel()
    await asyncio.gather(waiter, stopper, return_exceptions=True)


async def say(settings: Settings, text: str, output: Path, voice: str | None) -> int:
    """Speak `text` through a real server on a private socket: the same code path a
    Home Assistant request takes."""
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncClient
    from wyoming.error import Error
    from wyoming.tts import Synthesize, SynthesizeVoice

    from .server import VerbaServer

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"unix://{tmp}/say.sock"
        # A private server: no zeroconf, and no HTTP port that a running server may hold.
        server = VerbaServer(_replace(settings, uri=uri, zeroconf=None, http_port=None))
        await server.start()
        try:
            async with AsyncClient.from_uri(uri) as client:
                await client.write_event(
                    Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None)
                    .event()
                )
                audio, fmt = bytearray(), None
                while (event := await client.read_event()) is not None:
                    if Error.is_type(event.type):
                        print(f"error: {Error.from_event(event).text}", file=sys.stderr)
                        return 1
                    if AudioStart.is_type(event.type):
                        fmt = AudioStart.from_event(event)
                    elif AudioChunk.is_type(event.type):
                        audio += AudioChunk.from_event(event).audio
                    elif AudioStop.is_type(event.type):
                        break
        finally:
            await server.stop()
    if fmt is None:
        print("error: the server sent no audio", file=sys.stderr)
        return 1
    with wave.open(str(output), "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.width)
        wav.setframerate(fmt.rate)
        wav.writeframes(bytes(audio))
    seconds = len(audio) / (fmt.rate * fmt.width * fmt.channels)
    print(f"wrote {output} ({seconds:.2f} s, {fmt.rate} Hz)")
    return 0


def _replace(settings: Settings, **changes) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["text"]:
        from .preview import main as text_main

        return text_main(argv[1:])
    if argv[:1] == ["csm-voices"]:
        from .backends.factory import engine_command

        return engine_command("csm")(argv[1:])
    say_args = None
    if argv[:1] == ["say"]:
        parser = argparse.ArgumentParser(
            prog="wyoming-verba say",
            description="Speak TEXT into a WAV file; every server flag (--backend, --voice, "
            "...) applies.",
        )
        parser.add_argument("text")
        parser.add_argument("-o", "--output", type=Path, default=Path("say.wav"))
        say_args, argv = parser.parse_known_args(argv[1:])
    try:
        settings = load_settings(argv)
    except SettingsError as exc:
        print(f"wyoming-verba: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        if say_args is not None:
            return asyncio.run(say(settings, say_args.text, say_args.output, settings.voice))
        asyncio.run(run_server(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"wyoming-verba: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except LexiconError as exc:  # broken after --lexicon was checked, before it loaded
        print(f"wyoming-verba: --lexicon {exc}", file=sys.stderr)
        return 2
    return 0


def run() -> NoReturn:
    """The process's entry point: `main`, then exit without waiting for daemon threads.

    A backend thread can still be inside native code (a Piper sentence in onnxruntime)
    when shutdown's time is up; the interpreter would kill it mid-call while finalising,
    and onnxruntime answers that with abort() (exit status -6). Everything that needed
    an orderly end has had it by now, so such threads are left to the OS instead."""
    code = main()
    lingering = [t.name for t in threading.enumerate() if t.daemon and t.is_alive()]
    if lingering:
        _LOGGER.debug("exiting past running threads: %s", ", ".join(lingering))
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(ValueError, OSError):  # closed (the stdio server's)
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
