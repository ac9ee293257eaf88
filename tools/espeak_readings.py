"""What espeak-ng (and so Piper, which phonemises with it) makes of numbers and symbols,
written and normalised: the reason `normalizes_text` is on for those backends.

    python -m tools.espeak_readings            # a Markdown table for the README

Each cell is espeak-ng's own phoneme transcription (`espeak_TextToPhonemes`, ASCII
mnemonics; "|" marks a clause break, i.e. a pause espeak-ng inserts)."""

from __future__ import annotations

import ctypes

import espeakng_loader

from wyoming_verba.text.normalize import normalize

SAMPLES = [
    ("en-us", "en-US", "It costs $5.50."),
    ("en-us", "en-US", "Drive at 100 km/h."),
    ("en-us", "en-US", "Call 555-1234."),
    ("en-us", "en-US", "It is due 2026-12-01."),
    ("de", "de-DE", "Es kostet 5,50 €."),
    ("de", "de-DE", "Am 2. Mai."),
    ("de", "de-DE", "Am 1.12.2026."),
    ("de", "de-DE", "Nimm z. B. Äpfel."),
]


class Espeak:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        if self.lib.espeak_Initialize(0x02, 0, data, 0x8000) < 0:  # synchronous, no exit
            raise RuntimeError("espeak-ng did not initialise")
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]

    def phonemes(self, text: str, voice: str) -> str:
        self.lib.espeak_SetVoiceByName(voice.encode())
        pointer = ctypes.c_char_p(text.encode())
        clauses = []
        while pointer.value:  # one clause per call; the pointer moves on
            clauses.append((self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), 1, 0)
                            or b"").decode())
        return " | ".join(c.strip() for c in clauses if c.strip())


def main() -> int:
    espeak = Espeak()
    print("| text | espeak-ng reads it | normalised | espeak-ng reads that |")
    print("|---|---|---|---|")
    for voice, language, text in SAMPLES:
        spoken = normalize(text, language)
        print(f"| {text} | `{espeak.phonemes(text, voice)}` | {spoken} | "
              f"`{espeak.phonemes(spoken, voice)}` |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
