"""The HTML report in a real browser: headless Chromium must decode every image without console errors.

Runs when Debian's ``chromium`` and ``chromium-driver`` are installed. Outside CI
the test skips without them; in CI (the environment variable CI is set) a missing
browser fails the test.
"""
import os
import shutil
from pathlib import Path

import pytest

from jacobian_lab.report import build_report

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _find(candidates, name):
    for path in candidates:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def _browser_paths():
    chromium = _find(CHROMIUM_CANDIDATES, "chromium")
    driver = _find(DRIVER_CANDIDATES, "chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    if missing:
        message = (f"{' and '.join(missing)} not found; install with "
                   f"`apt-get update && apt-get install -y chromium chromium-driver`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        import selenium  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("selenium is not installed (pip install -e '.[test]')")
        pytest.skip("selenium is not installed")
    return chromium, driver


@pytest.fixture
def driver(tmp_path):
    chromium, chromedriver = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def test_report_renders_in_chromium(tmp_path, driver):
    out = tmp_path / "report"
    index = build_report(out, problems=["seed", "wide_to_tall"],
                         sizes={"seed": {"n": 30}, "wide_to_tall": {"n": 20, "m": 10}}, grid=(5, 10, 40), repeat=1)
    driver.get(index.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert "jacobian_lab report" in driver.title

    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,"
        " width: i.naturalWidth, height: i.naturalHeight}))")
    assert len(images) == 3 + 2 + 3  # overview + seed (phases, n) + wide_to_tall (phases, n, m)
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image

    tables = driver.execute_script("return document.querySelectorAll('table').length")
    assert tables >= 1 + 2 + 3  # summary + a comparison and a sweep table per problem and axis

    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe

    shot = tmp_path / "report.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 100, 12000))
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    target = os.environ.get("JACOBIAN_LAB_SCREENSHOT")
    if target:  # keep a copy to look at
        shutil.copy(shot, target)


@pytest.mark.parametrize("ci,outcome", [("true", pytest.fail.Exception), (None, pytest.skip.Exception)])
def test_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    import sys

    module = sys.modules[__name__]
    monkeypatch.setattr(module, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium"):
        _browser_paths()
