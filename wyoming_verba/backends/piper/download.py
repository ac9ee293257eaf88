"""Downloading a Piper voice from the voice repository into the data directory.

Same layout as wyoming-piper and the Hugging Face `rhasspy/piper-voices` repository:
`<base>/<family>/<family>_<REGION>/<name>/<quality>/<voice>.onnx(.json)`, and
`<base>/voices.json` as the catalogue holding each file's size and md5. Blocking code
(urllib): the backend runs it in a thread. Each file goes to a hidden temp file in the
data dir, is checked (Content-Length, the catalogue's size and md5 when it has them) and
then atomically renamed, the config last, so a voice is never listed half-downloaded and
an interrupted download leaves nothing that looks installed."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ..base import BackendUnavailable, SynthesisCancelled, VoiceNotFound
from .voices import CONFIG_SUFFIX, MODEL_SUFFIX, VOICE_NAME

_LOGGER = logging.getLogger(__name__)

CATALOGUE = "voices.json"
READ_BLOCK = 256 * 1024
SOCKET_TIMEOUT = 30.0  # seconds without a byte before giving up
PROGRESS_EVERY_S = 5.0


@dataclass
class DownloadProgress:
    """Shared with the event loop so a waiting request can say how far along it is."""

    done: int = 0
    total: int = 0

    def describe(self) -> str:
        if not self.total:
            return f"{self.done / 1e6:.1f} MB"
        percent = 100 * self.done // self.total
        return f"{percent}%, {self.done / 1e6:.0f} of {self.total / 1e6:.0f} MB"


def repository_paths(name: str) -> tuple[str, str]:
    """Paths of the model and its config inside the repository."""
    match = VOICE_NAME.match(name)
    if not match:
        raise VoiceNotFound(
            f"{name!r} is not a Piper voice name (expected <lang>_<REGION>-<name>-<quality>, "
            "e.g. en_US-lessac-medium)"
        )
    family, region, voice, quality = match["family"], match["region"], match["name"], match[
        "quality"]
    folder = f"{family}/{family}_{region}/{voice}/{quality}"
    return f"{folder}/{name}{MODEL_SUFFIX}", f"{folder}/{name}{CONFIG_SUFFIX}"


class VoiceDownloader:
    def __init__(self, base_url: str, data_dir: Path, timeout: float = SOCKET_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.data_dir = data_dir
        self.timeout = timeout

    def url(self, path: str) -> str:
        return f"{self.base_url}/{quote(path)}"

    def download(
        self,
        name: str,
        cancel: threading.Event | None = None,
        progress: DownloadProgress | None = None,
    ) -> tuple[Path, Path]:
        """Fetch `name` into the data dir; returns (model, config). Raises VoiceNotFound
        (not in the repository), BackendUnavailable (no network, truncated or corrupt
        download, unwritable data dir) or SynthesisCancelled."""
        cancel = cancel or threading.Event()
        progress = progress or DownloadProgress()
        model_path, config_path = repository_paths(name)
        catalogue = self._catalogue(name)
        entry = (catalogue or {}).get(name)
        if catalogue is not None and entry is None:
            raise VoiceNotFound(
                f"Piper voice {name!r} is not in the voice repository at {self.base_url}"
            )
        files = (entry or {}).get("files") or {}
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot create Piper data dir {self.data_dir}: {exc}", backend="piper"
            ) from exc
        temps: list[Path] = []
        try:
            # Config first: it is small, and a 404 on it fails before 60 MB are fetched.
            for path in (config_path, model_path):
                expected = files.get(path) or {}
                temps.append(self._fetch(name, path, expected, cancel, progress))
            config_temp, model_temp = temps
            model_dest = self.data_dir / Path(model_path).name
            config_dest = self.data_dir / Path(config_path).name
            try:
                os.replace(model_temp, model_dest)
                os.replace(config_temp, config_dest)  # last: the voice now counts as installed
            except OSError as exc:
                raise self._unwritable(name, exc) from exc
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)
        _LOGGER.info("downloaded Piper voice %s into %s", name, self.data_dir)
        return model_dest, config_dest

    def catalogue(self) -> dict[str, dict[str, Any]]:
        """The repository's voices.json: every voice it offers. Raises
        BackendUnavailable when the repository cannot be reached or read."""
        url = self.url(CATALOGUE)
        try:
            with self._open(url, CATALOGUE) as response:
                data = json.loads(response.read())
        except VoiceNotFound as exc:
            raise BackendUnavailable(f"no {CATALOGUE} at {self.base_url}",
                                     backend="piper") from exc
        except (ValueError, http.client.HTTPException, OSError) as exc:
            raise BackendUnavailable(f"unreadable {CATALOGUE} at {self.base_url}: {exc}",
                                     backend="piper") from exc
        if not isinstance(data, dict):
            raise BackendUnavailable(f"{CATALOGUE} at {self.base_url} is not a JSON object",
                                     backend="piper")
        return {name: entry for name, entry in data.items()
                if VOICE_NAME.match(name) and isinstance(entry, dict)}

    # --- internals -----------------------------------------------------------------

    def _catalogue(self, name: str) -> dict[str, Any] | None:
        """The repository's voices.json (sizes, md5s), or None where it has none."""
        url = self.url(CATALOGUE)
        try:
            with self._open(url, name) as response:
                return json.loads(response.read())
        except VoiceNotFound:
            _LOGGER.debug("no %s at %s: checking sizes only", CATALOGUE, self.base_url)
            return None
        except (ValueError, http.client.HTTPException, OSError) as exc:
            _LOGGER.warning("unreadable %s at %s (%s): checking sizes only",
                            CATALOGUE, self.base_url, exc)
            return None

    def _open(self, url: str, name: str) -> http.client.HTTPResponse:
        try:
            return urllib.request.urlopen(url, timeout=self.timeout)  # noqa: S310 - http(s) only
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (404, 410):
                raise VoiceNotFound(
                    f"Piper voice {name!r} is not in the voice repository ({url}: HTTP {exc.code})"
                ) from None
            raise BackendUnavailable(
                f"cannot download Piper voice {name!r}: {url} answered HTTP {exc.code}",
                backend="piper",
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            host = urlsplit(url).netloc
            raise BackendUnavailable(
                f"cannot download Piper voice {name!r}: no network connection to {host} "
                f"({reason}). Copy {name}{MODEL_SUFFIX} and {name}{CONFIG_SUFFIX} into "
                f"{self.data_dir}, or start with --no-piper-download",
                backend="piper",
            ) from None

    def _fetch(
        self,
        name: str,
        path: str,
        expected: dict[str, Any],
        cancel: threading.Event,
        progress: DownloadProgress,
    ) -> Path:
        """Download one file into a hidden temp file in the data dir and verify it."""
        url = self.url(path)
        file_name = Path(path).name
        try:
            fd, temp_name = tempfile.mkstemp(prefix=f".{file_name}.", suffix=".part",
                                             dir=self.data_dir)
        except OSError as exc:
            raise self._unwritable(name, exc) from exc
        temp = Path(temp_name)
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        try:
            with os.fdopen(fd, "wb") as out, self._open(url, name) as response:
                length = response.headers.get("Content-Length")
                announced = int(length) if length and length.isdigit() else None
                want = int(expected.get("size_bytes") or 0) or announced
                if file_name.endswith(MODEL_SUFFIX):
                    progress.total, progress.done = want or 0, 0
                    _LOGGER.info("downloading Piper voice %s from %s (%s)", name, url,
                                 f"{want / 1e6:.1f} MB" if want else "size unknown")
                last_log = time.monotonic()
                while True:
                    if cancel.is_set():
                        raise SynthesisCancelled(f"download of {name} cancelled")
                    try:
                        block = response.read(READ_BLOCK)
                    except http.client.IncompleteRead as exc:
                        block = exc.partial
                        out.write(block)
                        digest.update(block)
                        received += len(block)
                        break
                    except OSError as exc:  # includes timeouts
                        raise BackendUnavailable(
                            f"download of Piper voice {name!r} stalled after {received} bytes "
                            f"({exc})", backend="piper") from None
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    if file_name.endswith(MODEL_SUFFIX):
                        progress.done = received
                        if time.monotonic() - last_log >= PROGRESS_EVERY_S:
                            last_log = time.monotonic()
                            _LOGGER.info("downloading Piper voice %s: %s", name,
                                         progress.describe())
                out.flush()
                os.fsync(out.fileno())
            self._verify(name, file_name, received, announced, expected, digest.hexdigest())
            return temp
        except OSError as exc:  # writing: network errors are BackendErrors by now
            temp.unlink(missing_ok=True)
            raise self._unwritable(name, exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _unwritable(self, name: str, exc: OSError) -> BackendUnavailable:
        """Disk full, read-only or no permission: say where, not just errno."""
        return BackendUnavailable(
            f"cannot write Piper voice {name} into {self.data_dir}: {exc}", backend="piper")

    @staticmethod
    def _verify(
        name: str,
        file_name: str,
        received: int,
        announced: int | None,
        expected: dict[str, Any],
        md5: str,
    ) -> None:
        size = int(expected.get("size_bytes") or 0)
        for what, want in (("the server announced", announced), ("the catalogue lists", size)):
            if want and received != want:
                raise BackendUnavailable(
                    f"download of {file_name} for Piper voice {name!r} is incomplete: got "
                    f"{received} bytes, {what} {want}; it will be fetched again on the next "
                    "request", backend="piper")
        if received == 0:
            raise BackendUnavailable(f"download of {file_name} was empty", backend="piper")
        want_md5 = expected.get("md5_digest")
        if want_md5 and md5 != want_md5:
            raise BackendUnavailable(
                f"download of {file_name} for Piper voice {name!r} is corrupt: md5 {md5}, "
                f"the catalogue lists {want_md5}; it will be fetched again on the next request",
                backend="piper")
