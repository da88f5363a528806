"""The HTML report as a person sees it: real runs' pages opened in headless Chromium (the system's, driven by
Playwright), rendered with no console error, every number in the DOM equal to the record; screenshots are kept as
CI artefacts (``$FTAUDIT_ARTIFACTS``, else ``artifacts/`` in the checkout)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path

import pytest
import yaml

from ftaudit.report.__main__ import main
from ftaudit.report.numbers import format_number
from tests.conftest import REPO, TINY_SUBSET_RUN, run_script
from tests.report.test_html import HOSTILE, hostile_run

pytestmark = pytest.mark.slow

CHROMIUM = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
ARTIFACTS = Path(os.environ.get("FTAUDIT_ARTIFACTS", REPO / "artifacts"))
# Every number a page shows, as the browser's DOM has it: [key, exact value, text] (textContent: the numbers in
# a closed <details> are not rendered, so innerText would be empty).
SHOWN = "Array.from(document.querySelectorAll('[data-value]'), e => [e.dataset.key, e.dataset.value, e.textContent])"
IMAGES_LOADED = "Array.from(document.images).every(image => image.complete && image.naturalWidth > 0)"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[dev]'")
    if CHROMIUM is None:
        pytest.skip("no Chromium here: apt-get install chromium (.ci/run installs it where missing)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> Path:
    """A real 2x2 multirun (method full, lora x seeds 1, 2) of the tiny model with the default probes."""
    cwd = tmp_path_factory.mktemp("html-multirun")
    run = [arg for arg in TINY_SUBSET_RUN if arg != "probes.degradation=[]"]
    result = run_script("-m", *run, "method=full,lora", "seed=1,2", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = (cwd / "outputs" / "multirun").iterdir()
    return root


def open_page(browser, path: Path, screenshot: str | None = None):
    """The page at ``path`` (file://) and every console message and uncaught error it gave."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    if screenshot:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    return page, problems


def check_numbers(page, metrics: dict[str, float]) -> None:
    shown = page.evaluate(SHOWN)
    assert shown
    for key, value, text in shown:
        assert float(value) == metrics[key] and text == format_number(metrics[key]), key


def test_a_run_page_renders_with_every_number_as_recorded(browser, multirun, tmp_path):
    run_dir = multirun / "0"
    main([str(run_dir), "--format", "html", "--out", str(tmp_path)])
    page, problems = open_page(browser, tmp_path / "report.html", "report-run.png")
    assert problems == [] and page.evaluate(IMAGES_LOADED)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    headline = page.locator("#at-a-glance .card.gain [data-key]")
    assert headline.get_attribute("data-key") == "task/test_f1"
    assert float(headline.get_attribute("data-value")) == metrics["task/test_f1"]
    assert headline.inner_text() == format_number(metrics["task/test_f1"]) and headline.is_visible()
    check_numbers(page, metrics)
    assert page.locator("img[alt='reliability diagram (test)']").count() == 1
    page.close()


def test_a_multirun_page_renders_its_table_and_links_each_run(browser, multirun, tmp_path):
    main([str(multirun), "--format", "html", "--out", str(tmp_path)])
    page, problems = open_page(browser, tmp_path / "report.html", "report-multirun.png")
    assert problems == [] and page.evaluate(IMAGES_LOADED)
    records = {p.parent.name: json.loads(p.read_text()) for p in multirun.glob("*/metrics.json")}
    jobs: dict[str, list[str]] = {}
    for job in sorted(records):
        jobs.setdefault(yaml.safe_load((multirun / job / "config.yaml").read_text())["method"]["name"], []).append(job)
    assert {method: len(group) for method, group in jobs.items()} == {"full": 2, "lora": 2}
    cells = page.evaluate(
        "Array.from(document.querySelectorAll('table.paper tbody tr'), row => [row.cells[0].innerText, "
        "Array.from(row.querySelectorAll('td[data-mean]'), c => [c.dataset.key, c.dataset.mean, c.dataset.std])])"
    )
    assert [method for method, _ in cells] == ["full", "lora"]
    for method, row in cells:
        for key, mean, std in row:
            values = [records[job][key] for job in jobs[method]]
            assert float(mean) == statistics.fmean(values) and float(std) == statistics.stdev(values), key
    page.locator("#runs a").first.click()
    page.wait_for_load_state("load")
    assert page.locator("#run-name").inner_text() == "0"
    check_numbers(page, records["0"])
    assert problems == []
    page.close()


def test_a_real_sweeps_page_shows_its_history_and_links_its_trials(browser, tmp_path):
    tiny_sweep = [*TINY_SUBSET_RUN, "sweep.space.trainer.max_epochs.high=1", "sweep.space.optimizer.lr.low=1e-4"]
    result = run_script(*tiny_sweep, "sweep.n_trials=3", cwd=tmp_path, script="sweep.py")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").iterdir()
    main([str(sweep_dir), "--format", "html", "--out", str(tmp_path / "report")])
    page, problems = open_page(browser, tmp_path / "report" / "report.html", "report-sweep.png")
    assert problems == [] and page.evaluate(IMAGES_LOADED)
    assert page.locator("img[alt^='optimisation history of task/val_f1']").count() == 1
    trials = page.locator("section.sweep tbody tr")
    assert trials.count() == 3
    trials.first.locator("a").click()
    page.wait_for_load_state("load")
    assert page.locator("#at-a-glance .card.gain [data-key]").get_attribute("data-key") == "task/test_f1"
    assert problems == []
    page.close()


RECORDED = [Path(path) for path in os.environ.get("FTAUDIT_HTML_RUNS", "").split(os.pathsep) if path]


@pytest.mark.skipif(not RECORDED, reason="set FTAUDIT_HTML_RUNS to run folders (':'-separated) to check their pages")
@pytest.mark.parametrize("folder", RECORDED, ids=str)
def test_the_pages_of_recorded_runs_render_with_every_number_as_recorded(browser, folder, tmp_path):
    """Real records made elsewhere (e.g. the default run, a 2x2 multirun): their report pages, each one checked."""
    main([str(folder), "--format", "html", "--out", str(tmp_path)])
    pages = [tmp_path / "report.html", *sorted((tmp_path / "runs").glob("*.html"))]
    records = {p.parent.resolve(): json.loads(p.read_text()) for p in folder.rglob("metrics.json")}
    for number, path in enumerate(pages):
        page, problems = open_page(
            browser, path, f"report-recorded-{folder.name}-{number}.png" if number == 0 else None
        )
        assert problems == [] and page.evaluate(IMAGES_LOADED), path
        if path.parent.name == "runs" or len(records) == 1:
            name = page.locator("#run-name").inner_text()
            (metrics,) = [
                m for run, m in records.items() if run == folder.resolve() or run == (folder / name).resolve()
            ]
            check_numbers(page, metrics)
        page.close()


def test_hostile_names_stay_text_in_the_browser(browser, tmp_path):
    run_dir = hostile_run(tmp_path / "runs" / "hostile")
    main([str(run_dir), "--format", "html", "--out", str(tmp_path / "out")])
    page, problems = open_page(browser, tmp_path / "out" / "report.html")
    assert problems == []  # no alert() dialog, no error
    assert page.evaluate("document.scripts.length") == 0
    assert f"task/test_f1_{HOSTILE}" in page.locator("body").inner_text()
    page.close()
