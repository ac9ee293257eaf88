"""transformers releases: the supported range is declared once, enforced at start-up, and the
KV cache keyword is the one the installed forwards actually take."""

from __future__ import annotations

import inspect
import os
import sys
import tomllib
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402
from wyoming_verba.backends.base import BackendUnavailable  # noqa: E402
from wyoming_verba.backends.csm import CsmBackend  # noqa: E402
from wyoming_verba.backends.csm.compat import (  # noqa: E402
    SUPPORTED_SPEC,
    UnsupportedTransformers,
    cache_keyword,
    check_transformers,
)
from wyoming_verba.backends.csm.loader import load_model  # noqa: E402
from wyoming_verba.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def fake_version(monkeypatch, version: str) -> None:
    """The version the check reads. Loading can swap transformers' lazy module in
    sys.modules, so the checkpoint is built first and the current module patched."""
    shared_tiny_csm()
    monkeypatch.setattr(sys.modules["transformers"], "__version__", version)


def test_pyproject_declares_the_checked_range():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["csm"]
    assert f"transformers{SUPPORTED_SPEC}" in extras


def test_installed_release_is_supported():
    assert check_transformers() == sys.modules["transformers"].__version__


@pytest.mark.parametrize("version", ["4.57.1", "5.20.2", "5.26.0", "6.0.0", "5.30.0.dev0", "x"])
def test_unsupported_release_refused_with_one_clear_message(monkeypatch, version):
    fake_version(monkeypatch, version)
    with pytest.raises(UnsupportedTransformers) as info:
        load_model(str(shared_tiny_csm()), "cpu", "auto", "auto")
    message = str(info.value)
    assert version in message and SUPPORTED_SPEC in message
    assert info.value.transient is False


async def test_backend_start_refuses_unsupported_release(monkeypatch):
    fake_version(monkeypatch, "5.26.0")
    backend = CsmBackend(Settings(csm_model=str(shared_tiny_csm()), csm_device="cpu",
                                  backend="csm"))
    with pytest.raises(BackendUnavailable, match=r"transformers >=5\.21,<5\.26.*5\.26\.0"):
        await backend.start()


def test_cache_keyword_is_one_the_installed_forwards_take():
    from transformers.models.mimi.modeling_mimi import MimiTransformerModel

    for forward in (MimiTransformerModel.forward,
                    transformers.CsmForConditionalGeneration.forward):
        assert cache_keyword(forward) in inspect.signature(forward).parameters

    def old(hidden, past_key_values=None):
        return hidden

    def new(hidden, cache=None):
        return hidden

    def neither(hidden, memory=None):
        return hidden

    assert cache_keyword(old) == "past_key_values"
    assert cache_keyword(new) == "cache"
    with pytest.raises(UnsupportedTransformers):
        cache_keyword(neither)
