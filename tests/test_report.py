"""The HTML report, opened in headless Chromium with the network blocked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from odfail import ingest
from odfail.report import report
from odfail.synth import generate
from tests import browser

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A generated set whose first class is named like an HTML injection, two runs, and the report of the
    second compared with the first."""
    tmp = tmp_path_factory.mktemp("report")
    generate(tmp / "data", images=80, seed=5)
    gt = json.loads((tmp / "data" / "gt.json").read_text())
    gt["categories"][0]["name"] = HOSTILE
    (tmp / "gt.json").write_text(json.dumps(gt))
    preds = json.loads((tmp / "data" / "predictions.json").read_text())
    (tmp / "old.json").write_text(json.dumps(preds[::2]))
    ingest(tmp / "ws", gt=tmp / "gt.json", predictions=[(tmp / "old.json", "old"),
                                                         (tmp / "data" / "predictions.json", "new")])
    result = report(tmp / "ws", "new", tmp / "report.html", compare="old")
    return result, tmp


def test_report_is_one_offline_file_with_every_user_string_escaped(written):
    result, _ = written
    html = result.path.read_text()
    assert result.charts == 15
    assert "<script src" not in html and "http://" not in html.split("<script>", 1)[0]
    assert HOSTILE not in html  # escaped in the markup, \u003c-encoded in the charts' data
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.skipif(not browser.available() and not os.environ.get("CI"),
                    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_report_renders_offline_and_its_widgets_change_the_charts(written):
    from selenium.common.exceptions import NoAlertPresentException

    result, tmp = written
    driver = browser.open_page(result.path)
    try:
        specs = driver.execute_script("return Object.keys(window.odfailSpecs)")
        views = driver.execute_script("return Object.keys(window.odfailViews)")
        assert sorted(views) == sorted(specs) and len(views) == result.charts
        for chart in specs:  # every chart drew something
            assert driver.execute_script(
                f"return document.querySelectorAll('#chart-{chart} svg .mark-rect path, #chart-{chart} svg "
                f".mark-line path, #chart-{chart} svg .mark-symbol path, #chart-{chart} svg .mark-text text')"
                ".length") > 0, chart
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        # the IoU slider and the class selector change the PR chart
        before = browser.chart_svg(driver, "pr")
        browser.set_widget(driver, "pr", "IoU threshold", 0.8)
        after_iou = browser.chart_svg(driver, "pr")
        assert after_iou != before and "at IoU 0.80" in after_iou
        first_class = driver.execute_script(
            "return [...document.querySelectorAll('#chart-pr select option')][1].value")
        browser.set_widget(driver, "pr", "class", first_class)
        assert browser.chart_svg(driver, "pr") != after_iou
        browser.set_widget(driver, "pr", "decompose", True)
        # the metric selector changes the by-metric chart
        before = browser.chart_svg(driver, "by-metric")
        options = driver.execute_script(
            "return [...document.querySelectorAll('#chart-by-metric select option')].map(o => o.value)")
        browser.set_widget(driver, "by-metric", "metric", next(o for o in options if o == "height"))
        assert browser.chart_svg(driver, "by-metric") != before
        # the hostile class name ran nothing: no alert, no image element
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        assert driver.execute_script("return document.querySelectorAll('img').length") == 0
        assert HOSTILE in driver.execute_script("return document.body.innerText")
        shots = browser.screenshots(driver, Path(os.environ.get("ODFAIL_SHOTS", tmp / "shots")))
        assert all(p.stat().st_size > 5000 for p in shots)
    finally:
        driver.quit()


def test_each_chart_carries_the_data_it_names(written):
    """Every dataset a chart's spec names is in that spec (a figure built inside another builder once got the
    other builder's data: an empty confusion matrix)."""
    import re

    result, _ = written
    html = result.path.read_text()
    specs = json.loads(re.search(r"window\.odfailSpecs = (.*?);\n", html).group(1))
    for chart, spec in specs.items():
        names = set(re.findall(r'"data":\{"name":"(d\d+)"\}', json.dumps(spec, separators=(",", ":"))))
        assert names and names <= set(spec["datasets"]), chart
        assert all(len(spec["datasets"][n]) > 0 for n in names), chart
        # every field the encodings read is in the data or made by a transform
        text = json.dumps(spec)
        made = set(re.findall(r'"as": "([^"]+)"', text))
        for listed in re.findall(r'"as": \[([^\]]*)\]', text):
            made |= set(re.findall(r'"([^"]+)"', listed))
        made |= {k for t in re.findall(r'"calculate": "[^"]*", "as": "([^"]+)"', text) for k in [t]}
        have = {k for n in names for row in spec["datasets"][n] for k in row}
        fields = set(re.findall(r'"field": "([^"]+)"', text))
        assert fields - made <= have, (chart, fields - made - have)
