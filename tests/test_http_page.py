"""The page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) loads it through a Home Assistant-style ingress
proxy (a path prefix, the Supervisor's address, no API key), filters the voices, plays a
preview (the audio element receives data and plays), and shows a backend going down.

Skipped, saying why, where Chromium is not installed: `apt-get install chromium
chromium-driver`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.client import speak
from tests.fakes.tone_backend import Faults, ToneBackend
from tests.http_client import base_url
from wyoming_verba.backends.base import Voice
from wyoming_verba.http import security

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver)")
INGRESS = "/api/hassio_ingress/t0ken"
WAIT_S = 20


def chromium() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1100",
                     "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(DRIVER), options=options)


async def ingress_proxy(upstream: str) -> tuple[web.AppRunner, str]:
    """The Supervisor's ingress in miniature: strips the ingress path, adds
    X-Ingress-Path, and streams every answer through, from the address the server
    trusts (127.0.0.2 here)."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)),
                                    auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        headers = {k: v for k, v in request.headers.items() if k.lower() in
                   ("content-type", "accept", "range")}
        headers["X-Ingress-Path"] = INGRESS
        async with session.request(request.method, f"{upstream}/{path}",
                                   data=await request.read(), headers=headers) as answer:
            response = web.StreamResponse(status=answer.status, headers={
                k: v for k, v in answer.headers.items()
                if k.lower() in ("content-type", "x-request-id", "retry-after")})
            await response.prepare(request)
            async for piece in answer.content.iter_any():
                await response.write(piece)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_route("*", INGRESS + "/{tail:.*}", forward)
    app.on_cleanup.append(lambda _app: session.close())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}{INGRESS}/"


def until(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition, message=what)


async def test_the_page_in_chromium(verba_server, monkeypatch, tmp_path: Path):
    monkeypatch.setattr(security, "SUPERVISOR_ADDRESS", "127.0.0.2")
    flaky = ToneBackend(name="flaky", frequency=440.0, faults=Faults(chunk_delay=0.01),
                        voices_=[Voice("flaky-en", ("en-US",), "a flaky voice"),
                                 Voice("flaky-de", ("de-DE",), "eine wacklige Stimme")])
    steady = ToneBackend(name="steady", frequency=1000.0, faults=Faults(chunk_delay=0.01),
                         voices_=[Voice("steady-en", ("en-US",), "a steady voice"),
                                  Voice("steady-fr", ("fr-FR",), "une voix stable")])
    srv = await verba_server("--http-port", "0", "--http-api-key", "only-for-others",
                             backends=[flaky, steady])
    runner, page_url = await ingress_proxy(base_url(srv))
    driver = await asyncio.to_thread(chromium)
    try:
        from selenium.webdriver.common.by import By

        def load() -> tuple[list[str], str]:
            driver.get(page_url)
            until(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".voice")) == 4,
                  "the four voices listed")
            groups = [e.get_attribute("data-language")
                      for e in driver.find_elements(By.CSS_SELECTOR, "#voices details")]
            return groups, driver.find_element(By.ID, "key-form").is_displayed()

        groups, asks_for_key = await asyncio.to_thread(load)
        assert groups == ["de-DE", "en-US", "fr-FR"]  # grouped by language
        assert not asks_for_key  # ingress is trusted: no API key needed

        def filter_and_play() -> dict:
            box = driver.find_element(By.ID, "filter")
            box.send_keys("stable")  # matches steady-fr's description only
            until(driver, lambda d: d.find_element(By.ID, "voice-count").text == "1 of 4",
                  "the filter leaves one voice")
            shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".voice")
                     if e.is_displayed()]
            assert shown == ["steady-fr steady"], shown
            driver.find_element(By.CSS_SELECTOR, ".voice[data-name='steady-fr']").click()
            driver.find_element(By.ID, "play").click()
            until(driver, lambda d: d.execute_script(
                "const a = document.getElementById('player');"
                "return a.buffered.length > 0 && a.buffered.end(0) > 0.5 && a.currentTime > 0"),
                "the audio element buffers and plays the preview")
            return driver.execute_script(
                "const a = document.getElementById('player');"
                "return {bytes: Number(a.dataset.bytes), src: a.src,"
                " status: document.getElementById('play-status').textContent}")

        played = await asyncio.to_thread(filter_and_play)
        assert played["bytes"] > 1000 and played["src"].startswith("blob:")
        assert "First audio after" in played["status"]
        preview = srv.app.metrics.history.recent[-1]
        assert preview["front"] == "http" and preview["backends"] == ["steady"]
        assert steady.spoken and not flaky.attempts

        # flaky fails twice: the chain skips it (cooling down) and steady stands in.
        flaky.faults.fail_before_audio = 2
        for _ in range(2):
            reply = await speak(srv.uri, "The garage is open.", voice="flaky-en")
            assert not reply.errors

        def backend_down() -> tuple[str, list[str]]:
            item = until(driver, lambda d: d.find_element(
                By.CSS_SELECTOR, "#backends li[data-backend='flaky'][data-state='cooling']"),
                "flaky shown as cooling down")
            rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#requests tr")]
            driver.save_screenshot(str(tmp_path / "page.png"))
            return item.text, rows

        text, rows = await asyncio.to_thread(backend_down)
        assert "injected failure" in text and "retried in" in text
        # The failovers shown: spoken by steady after flaky's failure.
        assert sum(1 for r in rows if "wyoming" in r and r.endswith("steady 1")) == 2, rows
        assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        await asyncio.to_thread(driver.quit)
        await runner.cleanup()
