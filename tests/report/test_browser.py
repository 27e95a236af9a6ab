"""Each kind of report page in headless Chromium: tables and images visible, no request leaves the file.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``make setup`` installs them where it can) and
the ``selenium`` package (the ``dev`` extra). Nothing is downloaded at test time: the driver is the local
``chromedriver`` (Selenium Manager is never asked for one). A full-page screenshot of each page is saved under
``tmp_path`` and, when ``RADFAIR_ARTEFACTS`` names a folder, copied there.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from radfair.cli import app

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if _browser() is None:
        return "no Chromium on PATH (apt-get install chromium chromium-driver; `make setup` does it as root)"
    if shutil.which("chromedriver") is None:
        return "no chromedriver on PATH (apt-get install chromium-driver; `make setup` does it as root)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=f"browser test skipped: {_missing()}")


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _browser()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    try:
        d = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start here is a skip, said plainly
        pytest.skip(f"browser test skipped: headless Chromium did not start ({str(exc).splitlines()[0]})")
    yield d
    d.quit()


def _screenshot(driver, path: Path) -> None:
    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 16000)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                            "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    if os.environ.get("RADFAIR_ARTEFACTS"):
        target = Path(os.environ["RADFAIR_ARTEFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)


@pytest.mark.parametrize("kind", ["audit", "emb-vs-img", "reconstruction"])
def test_page_renders_with_visible_tables_and_images_and_no_request_leaves(kind, pages, driver, tmp_path):
    out = tmp_path / f"report-{kind}.html"
    result = CliRunner().invoke(app, ["report", str(pages[kind]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    driver.get_log("performance")  # drop anything logged before this page
    driver.get(out.as_uri())
    driver.execute_async_script("const done = arguments[0]; if (document.readyState === 'complete') done(); "
                                "else window.addEventListener('load', () => done());")

    tables = driver.execute_script("""return Array.from(document.querySelectorAll('table.sortable')).map(t => {
        const r = t.getBoundingClientRect(); return {w: r.width, h: r.height, rows: t.tBodies[0].rows.length}; });""")
    assert tables and all(t["w"] > 0 and t["h"] > 0 and t["rows"] > 0 for t in tables), tables

    images = driver.execute_script("""return Array.from(document.images).map(i => {
        const r = i.getBoundingClientRect();
        return {src: i.currentSrc.slice(0, 30), complete: i.complete, nw: i.naturalWidth, w: r.width, h: r.height}; });""")
    assert images, "no figure on the page"
    for image in images:
        assert image["complete"] and image["nw"] > 0 and image["w"] > 0 and image["h"] > 0, image
        assert image["src"].startswith("data:image/png;base64,"), image

    findings = driver.execute_script("return Array.from(document.querySelectorAll('#findings li')).map(li => li.innerText)")
    assert findings and all(f.strip() for f in findings)

    # the sortable tables sort: click the first header of the first table twice
    header = driver.find_element("css selector", "table.sortable thead th")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert header.get_attribute("aria-sort") == "descending"

    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    requested = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = [m["params"]["request"]["url"] for m in requested if m["method"] == "Network.requestWillBeSent"]
    outside = [u for u in resources + urls if not (u.startswith("data:") or u == out.as_uri())]
    assert not outside, f"requests beyond the file itself: {outside[:5]}"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

    _screenshot(driver, tmp_path / f"report-{kind}.png")
    assert (tmp_path / f"report-{kind}.png").stat().st_size > 10_000


def test_audit_story_comes_first_and_wide_tables_read_at_1400_px(pages, driver, tmp_path):
    """The forest plot and the ROC figure sit above the tables; at 1,400 px no table scrolls sideways until the
    user asks for every column, and the button brings the hidden columns back."""
    out = tmp_path / "report-audit-1400.html"
    result = CliRunner().invoke(app, ["report", str(pages["audit"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    driver.set_window_size(1400, 1000)
    try:
        driver.get(out.as_uri())
        top = driver.execute_script("""const y = s => document.querySelector(s).getBoundingClientRect().top + window.scrollY;
            return {overview: y('#overview'), tables: y('#tables'),
                    images: Array.from(document.querySelectorAll('#overview img')).map(i => i.alt)};""")
        assert top["overview"] < top["tables"]
        assert any(a.startswith("forest_") for a in top["images"]) and any(a.startswith("roc_") for a in top["images"])
        widths = driver.execute_script("""return Array.from(document.querySelectorAll('div.scroll')).map(d =>
            ({over: d.scrollWidth - d.clientWidth, id: d.previousElementSibling ? d.previousElementSibling.innerText : ''}));""")
        sideways = [w for w in widths if w["over"] > 2]
        assert not sideways, sideways
        button = driver.find_element("css selector", "button.columns")
        hidden = driver.execute_script("return document.querySelectorAll('table.compact th.extra').length")
        button.click()
        shown = driver.execute_script("return Array.from(document.querySelectorAll('th.extra')).filter(t => t.offsetWidth > 0).length")
        assert hidden > 0 and shown > 0 and button.text == "show key columns only"
        button.click()
        driver.set_window_size(1400, 1000)
        _screenshot(driver, tmp_path / "report-audit-1400.png")
    finally:
        driver.set_window_size(1280, 1000)
