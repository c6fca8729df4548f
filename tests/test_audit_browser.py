"""The audit loop in a real browser (headless Chromium driven by Selenium): sample -> review
several items with clicks and keys -> reload -> resume (verdicts still there) -> a fresh browser
(nothing in its storage) resumes from the server's files -> score. A caption holding <script>
and a reviewer named with HTML show as text.

Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; .ci/run
installs them when it runs as root with apt) and the `selenium` of the test extra; skipped,
with the reason, where they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from pathgen.audit.files import reviewer_file
from pathgen.audit.sample import load_manifest
from pathgen.cli import main
from pathgen_testkit.caption_audit import HOSTILE, build_dataset_folder, running_server

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = os.environ.get("PATHGEN_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
DRIVER = os.environ.get("PATHGEN_CHROMEDRIVER") or shutil.which("chromedriver") \
    or next((p for p in ("/usr/lib/chromium/chromedriver",) if os.path.exists(p)), None)

pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="no Chromium found (apt-get install chromium chromium-driver, "
                                               "or set PATHGEN_CHROMIUM)"),
    pytest.mark.skipif(DRIVER is None, reason="no chromedriver found (apt-get install chromium-driver, or "
                                              "set PATHGEN_CHROMEDRIVER)"),
    pytest.mark.timeout(180),
]

REVIEWER = "Dr <b>Ann</b>"


def new_browser(profile: Path):
    """A headless Chromium with its own, new profile folder (no storage from before)."""
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    opts.add_argument(f"--user-data-dir={profile}")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    try:
        return webdriver.Chrome(options=opts, service=Service(DRIVER))
    except Exception as err:  # e.g. a driver that does not match the browser
        pytest.skip(f"Chromium does not start here ({type(err).__name__}: {str(err)[:200]})")


def wait(driver, cond, timeout=10):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: cond(d))


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def saved(driver):
    """Every verdict posted and answered."""
    wait(driver, lambda d: js(d, "return document.body.dataset.pending") == "0"
         and d.find_element(By.ID, "status").text.startswith(("saved", "resumed", "ready")))


def key(driver, k):
    driver.find_element(By.TAG_NAME, "body").send_keys(k)


def li(driver, part, i):
    return driver.find_element(By.CSS_SELECTOR, f"#part-{part} li[data-index='{i}']")


def verdicts_shown(driver, part="caption"):
    return [e.get_attribute("data-verdict") for e in driver.find_elements(By.CSS_SELECTOR, f"#part-{part} li.sentence")]


def position(driver):
    return driver.find_element(By.ID, "item-pos").text


def test_review_in_a_real_browser(tmp_path):
    t0 = time.monotonic()
    dataset, cfg = build_dataset_folder(tmp_path)
    audit = tmp_path / "audit"
    # every pair of slide S1 (it holds the <script> caption) and a few others
    assert main(["audit", "sample", "--config", str(cfg), "--dataset", str(dataset), "--n", "20",
                 "--stratify", "slide_id", "--seed", "0", "--out", str(audit)]) == 0
    items = load_manifest(audit)["items"]
    hostile = next(i for i, it in enumerate(items) if HOSTILE in it["sentences"]["caption"])
    assert hostile >= 3  # seed 0: after the items reviewed first (else pick another seed)
    with running_server(audit) as server:
        driver = new_browser(tmp_path / "profile1")
        try:
            driver.get(server.url)
            wait(driver, lambda d: js(d, "return document.body.dataset.ready") == "1")
            assert not driver.find_element(By.ID, "review").is_displayed()  # no name yet
            key(driver, "1")  # keys do nothing before a reviewer is named
            name = driver.find_element(By.ID, "reviewer")
            name.send_keys(REVIEWER + "\n")
            wait(driver, lambda d: d.find_element(By.ID, "review").is_displayed())
            # the name is shown as text: no <b> element was made from it
            assert driver.find_element(By.ID, "whoami").text == f"Reviewer: {REVIEWER}"
            assert not driver.find_elements(By.CSS_SELECTOR, "#whoami b, header b")
            assert position(driver) == f"Item 1 of {len(items)}"

            # item 1: a click on sentence 1's "correct", then keys: j, 2 (wrong) -> focus moves on, 3
            li(driver, "caption", 0).find_element(By.CSS_SELECTOR, "button[data-verdict='correct']").click()
            key(driver, "j")
            key(driver, "2")
            key(driver, "3")
            saved(driver)
            assert verdicts_shown(driver) == ["correct", "wrong", "not_visible"]
            # a second click on a pressed button clears it, a third sets it again
            button = li(driver, "caption", 1).find_element(By.CSS_SELECTOR, "button[data-verdict='wrong']")
            assert button.get_attribute("aria-pressed") == "true"
            button.click()
            saved(driver)
            assert verdicts_shown(driver)[1] == ""
            button.click()
            saved(driver)

            # zoom: + to 100 %, + to 200 % (the patch at twice its pixels), 0 back to fit
            key(driver, "+")
            key(driver, "+")
            assert driver.find_element(By.ID, "zoom-label").text == "200%"
            assert js(driver, "const i = document.getElementById('patch'); return i.clientWidth / i.naturalWidth") == 2
            key(driver, "0")
            assert driver.find_element(By.ID, "zoom-label").text.startswith("fit")

            # item 2 (n): 1 1 1 with the keys, a corrected caption (c, type, Esc saves it)
            key(driver, "n")
            assert position(driver) == f"Item 2 of {len(items)}"
            for k in "111":
                key(driver, k)
            key(driver, "c")
            driver.switch_to.active_element.send_keys("Corrected <i>caption</i> text.")
            driver.switch_to.active_element.send_keys("\ue00c")  # Escape
            saved(driver)
            assert verdicts_shown(driver) == ["correct"] * 3

            # the describe/revise texts (d) and verdicts on them with j/k and the keys
            key(driver, "d")
            wait(driver, lambda d: d.find_element(By.ID, "part-describe").is_displayed())
            key(driver, "j")  # from the caption's last sentence onto describe sentence 1
            assert "focused" in li(driver, "describe", 0).get_attribute("class")
            key(driver, "1")            # describe 0 correct, focus -> describe 1
            key(driver, "2")            # describe 1 wrong, focus -> describe 2
            key(driver, "k")            # back to describe 1
            assert "focused" in li(driver, "describe", 1).get_attribute("class")
            key(driver, "j")
            key(driver, "j")            # revise 0
            key(driver, "1")
            key(driver, "1")            # revise 1 (the edited sentence) correct
            saved(driver)
            assert verdicts_shown(driver, "describe") == ["correct", "wrong", ""]
            assert verdicts_shown(driver, "revise") == ["correct", "correct", ""]

            # the item with the <script> caption (Next button clicks): shown as text
            while position(driver) != f"Item {hostile + 1} of {len(items)}":
                driver.find_element(By.ID, "next").click()
            assert HOSTILE in [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#part-caption li .text")]
            assert js(driver, "return window.__pwned === undefined")
            assert not driver.find_elements(By.CSS_SELECTOR, "#texts script, #texts img")
            key(driver, "4")
            saved(driver)
            last = position(driver)

            # reload: the page starts again by itself, at the same item, with the verdicts
            driver.refresh()
            wait(driver, lambda d: d.find_element(By.ID, "review").is_displayed() and position(d) == last)
            assert verdicts_shown(driver)[0] == "cant_tell"
            assert driver.find_element(By.ID, "status").text.startswith("resumed")
            while position(driver) != f"Item 1 of {len(items)}":
                key(driver, "p")
            assert verdicts_shown(driver) == ["correct", "wrong", "not_visible"]
            key(driver, "n")
            assert driver.find_element(By.ID, "corrected").get_attribute("value") == "Corrected <i>caption</i> text."
            assert js(driver, "return window.__pwned === undefined")
        finally:
            driver.quit()

        # a fresh browser (another profile: no local storage): the name alone brings the verdicts back
        driver = new_browser(tmp_path / "profile2")
        try:
            driver.get(server.url)
            wait(driver, lambda d: js(d, "return document.body.dataset.ready") == "1")
            assert not driver.find_element(By.ID, "review").is_displayed()
            driver.find_element(By.ID, "reviewer").send_keys(REVIEWER + "\n")
            wait(driver, lambda d: d.find_element(By.ID, "review").is_displayed())
            # it opens at the first item whose caption is not fully judged: item 3 (or the one after)
            assert position(driver) == f"Item 3 of {len(items)}"
            key(driver, "p")
            key(driver, "p")
            assert verdicts_shown(driver) == ["correct", "wrong", "not_visible"]
        finally:
            driver.quit()

    data = json.loads(reviewer_file(audit, REVIEWER).read_text())
    assert data["reviewer"] == REVIEWER
    assert data["items"][items[0]["id"]]["caption"] == {"0": "correct", "1": "wrong", "2": "not_visible"}
    assert data["items"][items[1]["id"]]["corrected"] == "Corrected <i>caption</i> text."
    assert main(["audit", "score", str(audit)]) == 0
    res = json.loads((audit / "score.json").read_text())
    overall = next(r for r in res["sentence_accuracy"] if r["scope"] == "all" and r["reviewer"] == "all")
    assert overall["counts"] == {"correct": 4, "wrong": 1, "not_visible": 1, "cant_tell": 1}
    assert overall["k"] == 4 and overall["n"] == 6
    cap = next(r for r in res["caption_accuracy"] if r["scope"] == "all" and r["reviewer"] == "all")
    assert (cap["correct"], cap["with_error"], cap["undetermined"]) == (1, 1, 1)
    rev = res["revision"][0]
    assert rev["items"] == 1 and rev["fixed_edited"] == 1
    assert res["corrected_captions"] == {REVIEWER: 1}
    assert time.monotonic() - t0 < 90
