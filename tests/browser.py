"""Headless Chromium (Debian's chromium and chromium-driver) through Selenium, with the network blocked: the
report must render from the file alone."""

from __future__ import annotations

import shutil
from pathlib import Path


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def open_page(path: Path, width: int = 1400, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--proxy-server=127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    driver.set_script_timeout(60)
    driver.get(path.resolve().as_uri())
    # every chart embedded (vegaEmbed's promises), then one frame for the SVG to be drawn
    driver.execute_async_script("const done = arguments[0]; window.odfailRendered.then(() => "
                                "requestAnimationFrame(() => done(true)), e => done(String(e)));")
    return driver


def chart_svg(driver, chart_id: str) -> str:
    return driver.execute_script(f"return document.querySelector('#chart-{chart_id} svg').outerHTML;")


def set_widget(driver, chart_id: str, label: str, value) -> None:
    """Set the input bound to a chart's parameter (its label text starts with ``label``) and let Vega run."""
    driver.execute_script("""
        const [id, label, value] = arguments;
        const box = document.querySelector('#chart-' + id);
        for (const b of box.querySelectorAll('.vega-bind')) {
            if (!b.textContent.trim().startsWith(label)) continue;
            const input = b.querySelector('input, select');
            if (input.type === 'checkbox') input.checked = value; else input.value = value;
            input.dispatchEvent(new Event(input.type === 'range' ? 'input' : 'change', {bubbles: true}));
            return;
        }
        throw new Error('no widget ' + label + ' in ' + id);""", chart_id, label, value)
    driver.execute_async_script("const done = arguments[arguments.length - 1]; const v = window.odfailViews["
                                "arguments[0]]; v.runAsync().then(() => requestAnimationFrame(() => done(true)));",
                                chart_id)


def screenshots(driver, folder: Path) -> list[Path]:
    """One PNG per section of the page."""
    folder.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(height + 200, 16000))
    out = []
    for element in driver.find_elements("css selector", "section"):
        path = folder / f"{element.get_attribute('id')}.png"
        element.screenshot(str(path))
        out.append(path)
    return out
