"""The tour's report.html in a real browser: headless Chromium driven by selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium;
skipped where they are missing. The page must load with no console error, every figure must
decode, and the calculator must give the multiplications ``sepconv.cost.compare`` gives.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sepconv import cost
from sepconv.tour import run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = "/usr/bin/chromedriver"

REQUIRED = os.environ.get("SEPCONV_REQUIRE_BROWSER") == "1"  # set by .ci/run
MISSING = CHROMIUM is None or not os.path.exists(DRIVER)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        MISSING and not REQUIRED, reason="needs Debian's chromium and chromium-driver"
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour-browser") / "tour"
    run(out)
    return out / "report.html"


@pytest.fixture(scope="module")
def browser():
    assert not MISSING, "chromium and /usr/bin/chromedriver are required (SEPCONV_REQUIRE_BROWSER)"
    if REQUIRED:
        from selenium import webdriver
    else:
        webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sepconv-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _keep(shot: Path) -> None:
    """Copy a screenshot to $SEPCONV_SCREENSHOTS (CI sets it), when that folder exists."""
    folder = os.environ.get("SEPCONV_SCREENSHOTS")
    if folder and os.path.isdir(folder):
        shutil.copy(shot, Path(folder) / shot.name)


def _open(browser, report: Path, width: int, height: int) -> None:
    browser.set_window_size(width, height)
    browser.get(report.as_uri())
    browser.execute_script("return document.readyState")


def test_page_loads_without_errors_and_every_figure_decodes(browser, report, tmp_path):
    _open(browser, report, 1280, 900)
    logs = browser.get_log("browser")
    errors = [entry for entry in logs if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    assert len(images) >= 10
    assert all(complete and width > 0 for complete, width, _ in images), images
    assert browser.execute_script("return document.querySelectorAll('figure img').length") >= 10
    # Nothing is fetched: every resource is embedded in the page.
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [u for u in urls if not u.startswith("data:")] == []
    shot = tmp_path / "report-laptop.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000
    _keep(shot)


def test_phone_width_has_no_page_wide_horizontal_scroll(browser, report, tmp_path):
    _open(browser, report, 390, 844)
    width = browser.execute_script("return document.documentElement.clientWidth")
    scroll = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= width + 1, (scroll, width)
    # A tap enlarges a figure inside its own scroller, never the page.
    image = browser.find_element("css selector", "#fig-8 img")
    browser.execute_script("arguments[0].scrollIntoView()", image)
    before = image.size["width"]
    image.click()
    assert image.size["width"] > before
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width + 1
    image.click()
    browser.execute_script("document.getElementById('calculator').scrollIntoView()")
    shot = tmp_path / "report-phone.png"
    assert browser.save_screenshot(str(shot))
    _keep(shot)
    browser.set_window_size(1280, 900)


def _expected(h, w, c_in, k, c_out, stride, padding):
    try:
        c = cost.compare((h, w, c_in), k, c_out, stride=stride, padding=padding)
    except ValueError:
        return None
    depthwise, pointwise = (p.multiplications for p in c.depthwise_separable.parts)
    return {"normal": c.normal.multiplications, "depthwise": depthwise, "pointwise": pointwise}


def test_calculator_equals_sepconv_cost_on_a_grid(browser, report):
    _open(browser, report, 1280, 900)
    grid = list(
        itertools.product(
            (1, 5, 12, 224),
            (7, 112),
            (1, 3, 32),
            (1, 2, 3, 5, 7),
            (1, 16, 256),
            (1, 2, 3),
            ("valid", "same", 0, 1, 3),
        )
    )
    results = browser.execute_script(
        """
        return arguments[0].map(a => {
          try { return sepconvCost(...a); } catch (e) { return null; }
        });
        """,
        grid,
    )
    assert len(results) == len(grid)
    mismatches = [
        (args, got, _expected(*args)) for args, got in zip(grid, results) if got != _expected(*args)
    ]
    assert mismatches == []
    assert sum(r is None for r in results) > 0  # the grid holds kernels that do not fit
    assert browser.execute_script("return sepconvCost(12, 12, 3, 5, 256, 1, 'valid')") == {
        "normal": 1_228_800,
        "depthwise": 4_800,
        "pointwise": 49_152,
    }
    # Bad arguments throw, as sepconv.cost raises; so do counts a double cannot hold exactly.
    for call in (
        "sepconvCost(0, 12, 3, 5, 256, 1, 'valid')",
        "sepconvCost(12, 12, 3, 5, 256, 1, 'full')",
        "sepconvCost(12, 12, 3, 5.5, 256, 1, 'valid')",
        "sepconvCost(12, 12, 3, 5, 256, 1, -1)",
        "sepconvCost(100000, 100000, 4096, 11, 4096, 1, 'same')",
    ):
        assert (
            browser.execute_script(
                f"try {{ {call}; return 'no error'; }} catch (e) {{ return e.name; }}"
            )
            == "RangeError"
        ), call
    with pytest.raises(ValueError):
        cost.compare((0, 12, 3), 5, 256)
    big = cost.compare((100000, 100000, 4096), 11, 4096, padding="same")
    assert big.normal.multiplications > 2**53 - 1


def test_calculator_words_ratios_as_sepconv_does(browser, report):
    """The calculator's "x fewer / % more" is sepconv._text.ratio_text, rounding included."""
    from sepconv._text import ratio_text

    _open(browser, report, 1280, 900)
    ratios = [1 / 1.06, 1.06, 1.5, 8 / 7, 1.6, 2.125, 1.0, 1.0004, 1.004, 0.5, 1228800 / 53952]
    ratios += [n / d for n in (1, 3, 7, 11, 49, 256) for d in (1, 2, 5, 9, 25, 97)]
    got = browser.execute_script(
        "return arguments[0].map(r => [sepconvRatioText(r), sepconvRatioText(r, 2)]);", ratios
    )
    expected = [[ratio_text(r), ratio_text(r, digits=2)] for r in ratios]
    assert got == expected
    assert got[0] == ["6% more", "6% more"]


def test_calculator_form_shows_the_counts(browser, report):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, report, 1280, 900)
    assert browser.find_element(By.ID, "calc-normal").text == "1,228,800"
    assert browser.find_element(By.ID, "calc-separable").text == "53,952"
    assert browser.find_element(By.ID, "calc-ratio").text == "22.78x fewer (0.0439 of the work)"
    padding = Select(browser.find_element(By.CSS_SELECTOR, "#calc select[name=padding]"))
    padding.select_by_value("same")
    assert browser.find_element(By.ID, "calc-normal").text == "2,764,800"
    assert browser.find_element(By.ID, "calc-separable").text == "121,392"
    k = browser.find_element(By.CSS_SELECTOR, "#calc input[name=k]")
    k.clear()
    k.send_keys("99")
    padding.select_by_value("valid")
    assert "kernel_size" in browser.find_element(By.ID, "calc-message").text
    _assert_results_cleared(browser)
    k.clear()
    k.send_keys("0")  # not a kernel: the error, and none of the earlier numbers
    message = browser.find_element(By.ID, "calc-message").text
    assert "`k` must be a positive integer, got 0" in message
    _assert_results_cleared(browser)
    k.clear()
    k.send_keys("5")  # valid again: the numbers come back and the message goes
    assert browser.find_element(By.ID, "calc-normal").text == "1,228,800"
    assert browser.find_element(By.ID, "calc-message").text == ""
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


def _assert_results_cleared(browser) -> None:
    from selenium.webdriver.common.by import By

    for key in ("shape", "normal", "depthwise", "pointwise", "separable", "ratio", "rule"):
        assert browser.find_element(By.ID, f"calc-{key}").text == "", key
    for key in ("normal", "depthwise", "pointwise", "separable"):
        assert not browser.find_element(By.ID, f"bar-{key}").is_displayed(), key


def test_kernel_gallery_switches_kernels(browser, report):
    import json

    from selenium.webdriver.common.by import By

    _open(browser, report, 1280, 900)
    data = json.loads((report.parent / "report.json").read_text(encoding="utf-8"))
    entries = data["steps"][0]["numbers"]["gallery"]
    buttons = browser.find_elements(By.CSS_SELECTOR, "#gallery [data-kernel]")
    assert len(buttons) == len(entries) >= 5
    seen = set()
    for button, entry in zip(buttons, entries):
        browser.execute_script("arguments[0].scrollIntoView()", button)
        button.click()
        text = browser.find_element(By.ID, "gallery-text").text
        assert text.startswith(entry["name"]) and f"rank {entry['rank']}" in text
        assert f"{entry['direct_multiplications']:,}" in text
        src = browser.find_element(By.ID, "gallery-response").get_attribute("src")
        assert (
            browser.execute_script(
                "return document.getElementById('gallery-response').naturalWidth"
            )
            > 0
        )
        seen.add(src)
        assert button.get_attribute("aria-pressed") == "true"
    assert len(seen) == len(entries)
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
