"""The README's picture of the page: a real server (Edge against the local fake service,
Piper, espeak-ng) with some Wyoming and HTTP traffic, Edge failing twice (so it cools
down and Piper stands in), then headless Chromium plays a preview and takes the shot.

    python -m tools.page_screenshot docs/page.png

Needs Debian's chromium and chromium-driver, and the test extra (selenium)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest  # only for MonkeyPatch, which undoes the patches

from tests.client import speak, speak_streaming
from tests.fakes.edge_service import FakeEdge
from wyoming_verba.server import VerbaServer
from wyoming_verba.settings import load_settings


def shoot(url: str, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     "--window-size=1280,1180", "--autoplay-policy=no-user-gesture-required",
                     "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".voice")) > 10)
        driver.find_element(By.ID, "filter").send_keys("en-")
        driver.find_element(By.CSS_SELECTOR, ".voice[data-name='en_US-joe-medium']").click()
        driver.find_element(By.ID, "play").click()
        wait.until(lambda d: d.execute_script(
            "return document.getElementById('player').currentTime > 0.8"))
        driver.execute_script("document.getElementById('player').pause()")
        time.sleep(2)  # one more status poll, with the preview in the table
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


async def run(out: Path) -> None:
    with tempfile.TemporaryDirectory() as data, pytest.MonkeyPatch.context() as mp:
        async with FakeEdge(pace=0.02) as fake:
            fake.patch(mp)
            settings = load_settings(
                ["--uri", "tcp://127.0.0.1:0", "--backend", "edge,piper,espeak",
                 "--http-port", "0", "--data-dir", data, "--no-piper-download"], env={})
            server = VerbaServer(settings)
            await server.start()
            assert server.http is not None
            uri, base = f"tcp://127.0.0.1:{server.port}", f"http://127.0.0.1:{server.http.port}"
            try:
                await speak(uri, "The front door is locked.")
                await speak_streaming(uri, ["Good morning. ", "It is sunny and ", "warm today."])
                async with aiohttp.ClientSession() as session:
                    for voice, text in (("de", "Das Licht in der Küche ist an."),
                                        ("alloy", "The washing machine has finished.")):
                        async with session.post(base + "/v1/audio/speech", json={
                                "model": "tts-1", "voice": voice, "input": text,
                                "response_format": "mp3"}) as response:
                            await response.read()
                fake.queue("503", "503", "503", "503")  # two sentences, each retried once
                await speak(uri, "The garage door is open. Shall I close it?")
                await speak(uri, "The dishwasher is done.")
                await asyncio.to_thread(shoot, base + "/", out)
            finally:
                await server.stop()
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/page.png"))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(parser.parse_args().out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
