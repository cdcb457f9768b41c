"""The drawing page in a real browser: headless Chromium draws a digit stroke by stroke.

Needs Debian's chromium and chromium-driver (.ci/run installs them); skipped
with the reason elsewhere. Also the Fashion-MNIST replay into the MNIST model:
the monitor shows the accuracy drop and the drift flag.
"""

import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest

from tests.helpers import ROOT
from tests.serving_helpers import Served

pytestmark = pytest.mark.slow

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = os.path.join(ROOT, "docs", "serve_page.png")


@pytest.fixture
def browser():
  if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
    pytest.skip("no Chromium: apt-get install chromium chromium-driver (.ci/run does)")
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", "--no-first-run", "--window-size=1000,800"):
    options.add_argument(argument)
  driver = webdriver.Chrome(service=Service(DRIVER), options=options)
  yield driver
  driver.quit()


def _draw(driver, pad, strokes):
  """Each stroke a list of (x, y) points on the 280x280 pad, drawn with the pointer."""
  from selenium.webdriver.common.action_chains import ActionChains
  for stroke in strokes:
    (x, y), rest = stroke[0], stroke[1:]
    actions = ActionChains(driver).move_to_element_with_offset(pad, x - 140, y - 140).click_and_hold()
    for (x1, y1), (x0, y0) in zip(rest, stroke):
      actions.move_by_offset(x1 - x0, y1 - y0)
    actions.release().perform()


def test_a_digit_drawn_in_the_browser_is_classified(browser, exported, tmp_path):
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait
  served = Served(f"--model={exported('cnn')}", f"--feedback_log={tmp_path / 'f.jsonl'}")
  try:
    browser.get(served.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "pad").get_attribute("data-ready") == "true")
    pad = browser.find_element(By.ID, "pad")
    one = [[(140, 50 + 10 * i) for i in range(19)]]  # a vertical stroke: "1"
    _draw(browser, pad, one)
    wait.until(lambda d: d.find_element(By.ID, "predicted").text == "1")
    wait.until(lambda d: d.find_element(By.ID, "feedback").is_displayed())  # settled
    assert len(browser.find_elements(By.CSS_SELECTOR, "#bars .bar")) == 10
    browser.find_element(By.ID, "clear").click()
    seven = [[(80 + 10 * i, 60) for i in range(13)],  # the bar, then the slanted stem
             [(200 - 5 * i, 60 + 11 * i) for i in range(18)]]
    _draw(browser, pad, seven)
    wait.until(lambda d: d.find_element(By.ID, "predicted").text == "7")
    top = browser.find_element(By.CSS_SELECTOR, "#bars .bar.top")
    assert top.get_attribute("data-class") == "7"
    browser.save_screenshot(str(tmp_path / "page.png"))
    if os.environ.get("PERCEPTRAX_SCREENSHOT"):  # the README's picture
      shutil.copyfile(tmp_path / "page.png", SCREENSHOT)
    wait.until(lambda d: d.find_element(By.ID, "feedback").is_displayed())  # settled: an id
    report = httpx.get(served.url + "/v1/monitor").json()
    assert report["predictions"] == 2  # the "1" and the "7" (two strokes, one drawing)
    assert report["previews"] >= 4  # what the page showed while they were drawn
    assert report["drift"]["images"] == 2
    browser.get(served.url + "/monitor")
    wait.until(lambda d: "predictions since start" in d.find_element(By.ID, "summary").text)
    # Before any label: said so, and no per-class figures (zeros would look like a broken model).
    assert browser.find_element(By.ID, "summary").text.startswith("no labels have arrived yet")
    assert browser.find_elements(By.CSS_SELECTOR, "#f1 .bar") == []
    assert browser.find_element(By.ID, "f1").text == "no labels yet"
    # A label given on the drawing page: the accuracy and the ten classes' figures appear.
    browser.get(served.url + "/")
    wait.until(lambda d: d.find_element(By.ID, "pad").get_attribute("data-ready") == "true")
    _draw(browser, browser.find_element(By.ID, "pad"), one)
    wait.until(lambda d: d.find_element(By.ID, "feedback").is_displayed())
    browser.find_elements(By.CSS_SELECTOR, "#labels button")[1].click()
    wait.until(lambda d: d.find_element(By.ID, "status").text == "recorded: 1")
    browser.get(served.url + "/monitor")
    wait.until(lambda d: d.find_element(By.ID, "summary").text.startswith(
        "accuracy 1.0000 over 1 labelled predictions"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#f1 .bar")) == 10
  finally:
    served.stop()


def test_replaying_fashion_mnist_into_the_mnist_model_drops_accuracy_and_flags_drift(
    exported, archive_dir, mnist_data_dir, tmp_path):
  served = Served(f"--model={exported('mlp')}", f"--feedback_log={tmp_path / 'f.jsonl'}",
                  "--monitor_window=500", "--drift_window=500")
  try:
    def replay(dataset):
      result = subprocess.run(
          [sys.executable, "-m", "scripts.monitor_replay", f"--url={served.url}",
           f"--dataset={dataset}", "--limit=500", "--noprogress", f"--archive_dir={archive_dir}",
           f"--tfds_data_dir={mnist_data_dir}"],
          cwd=ROOT, capture_output=True, text=True, timeout=600)
      assert result.returncode == 0, result.stderr[-2000:]
      return json.loads(result.stdout.splitlines()[-1])  # after any preparation output

    mnist = replay("mnist")
    assert mnist["labelled"] == 500 and mnist["accuracy"] > 0.85
    assert not mnist["drift"]["drifted"] and mnist["drift"]["psi"] < 0.05
    fashion = replay("fashion_mnist")
    assert fashion["labelled"] == 500 and fashion["accuracy"] < 0.3
    assert fashion["drift"]["drifted"] and fashion["drift"]["psi"] > 0.2
    metrics = httpx.get(f"{served.url}/metrics").text
    assert "perceptrax_drift 1.0" in metrics
  finally:
    served.stop()
