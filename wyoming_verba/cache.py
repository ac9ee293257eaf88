"""An LRU cache of spoken sentences for repeated announcements ("the front door is open").

Keyed on the sentence, the voice, the output format and the backend that would speak it
now, so a cached Edge sentence is not replayed while CSM is the live voice; bounded in bytes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from .audio import AudioFormat
from .backends.chain import BackendChain, VoiceChoice


class AudioCache:
    def __init__(self, max_bytes: int, chain: BackendChain) -> None:
        self.max_bytes = max_bytes
        self.chain = chain
        self.bytes = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()

    def key(self, sentence: str, choice: VoiceChoice, fmt: AudioFormat) -> Hashable:
        backend = self.chain.first_usable(choice)
        return (sentence, choice.name, choice.speaker, choice.language, fmt, backend)

    def get(self, key: Hashable) -> bytes | None:
        audio = self._items.get(key)
        if audio is not None:
            self._items.move_to_end(key)
        return audio

    def put(self, key: Hashable, audio: bytes) -> None:
        if len(audio) > self.max_bytes // 4:  # one long text must not flush everything
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= len(old)
        self._items[key] = audio
        self.bytes += len(audio)
        while self.bytes > self.max_bytes:
            _key, evicted = self._items.popitem(last=False)
            self.bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._items)
