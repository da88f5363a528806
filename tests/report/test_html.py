"""``--format html`` without a browser: every number on the pages is the record's, with its declared split and
direction; hostile names are text; nothing is written outside the output folder; sweeps show their history."""

from __future__ import annotations

import base64
import csv
import json
import random
import re
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from ftaudit.report.__main__ import main
from ftaudit.report.config_diff import config_changes
from ftaudit.report.html import inside, page_files
from ftaudit.report.numbers import format_number
from ftaudit.report.records import read_run
from tests.conftest import compose_config
from tests.report.dom import numbers, parse
from tests.report.synthetic import FAIRNESS_GROUPS, make_sweep, run_config, run_metrics, write_run

HOSTILE = "<script>alert(1)</script>"
HOSTILE_GROUP = "<img src=x onerror=alert(1)>"  # a key segment: no "/"


def report(*args) -> None:
    main([str(arg) for arg in args])


def hostile_run(run_dir: Path) -> Path:
    """A run record with a hostile label, name group and config value, every section's inputs present."""
    config = run_config(1e-4, 1, run_dir) | {"data": {"name": HOSTILE}, "task": {"name": "ner"}}
    metrics = run_metrics(random.Random(0))
    metrics[f"task/test_f1_{HOSTILE}"] = 0.5
    metrics["task/test_ece"] = 0.0421
    for layer in ("embeddings", "layer_0", "layer_1"):
        metrics[f"degradation/cka/{layer}"] = 0.9
    metrics["degradation/stsb/drop_ci_low"], metrics["degradation/stsb/drop_ci_high"] = 1.0, 30.0
    for group in (*FAIRNESS_GROUPS, HOSTILE_GROUP):
        recall = metrics.setdefault(f"fairness/names/group/{group}/recall", 0.8)
        metrics[f"fairness/names/group/{group}/recall_ci_low"] = recall - 0.05
        metrics[f"fairness/names/group/{group}/recall_ci_high"] = min(1.0, recall + 0.05)
    metrics["resource/train_tokens"] = 280125.0
    write_run(run_dir, config, metrics)
    bins = {"split": "test", "bins": 4, "count": [0, 3, 5, 92], "ece": 0.0421}
    bins |= {"confidence": [None, 0.4, 0.6, 0.95], "accuracy": [None, 0.33, 0.8, 0.93]}
    (run_dir / "calibration.json").write_text(json.dumps(bins))
    env = {"git_commit": "abc123", "packages": {"torch": "2.13.0"}, "seed": 1, "device": "cpu (bf16-mixed)"}
    env["data_files"] = [{"path": f"/data/{HOSTILE}.txt", "sha256": "f" * 64}]
    (run_dir / "env.json").write_text(json.dumps(env))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"data.name={HOSTILE}"]))
    (run_dir / "model").mkdir()
    (run_dir / "model" / "README.md").write_text("---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n---\n")
    return run_dir


@pytest.fixture
def run_page(tmp_path) -> tuple[Path, str]:
    run_dir = hostile_run(tmp_path / "runs" / "only")
    report(run_dir, "--format", "html", "--out", tmp_path / "out")
    return run_dir, (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_every_number_on_a_run_page_is_the_record_exactly(run_page):
    run_dir, html = run_page
    metrics = json.loads((run_dir / "metrics.json").read_text())
    shown = numbers(parse(html))
    for element in shown:
        key = element.attrs["data-key"]
        assert float(element.attrs["data-value"]) == metrics[key], key
        assert element.text == format_number(metrics[key]), key
    assert {element.attrs["data-key"] for element in shown} == metrics.keys()  # nothing left out, nothing invented


def test_the_headline_comes_first_and_each_number_says_its_split_and_direction(run_page):
    run_dir, html = run_page
    glance = html[html.index('id="at-a-glance"') : html.index("</section>", html.index('id="at-a-glance"'))]
    first = re.search(r'data-key="([^"]+)"', glance)[1]
    assert first == "task/test_f1"
    declared = json.loads((run_dir / "metrics_info.json").read_text())
    for key, direction in (("task/test_f1", "↑ higher is better"), ("degradation/stsb/drop", "↓ lower is better")):
        row = re.search(rf'<td class="key">{re.escape(key)}</td>.*?</tr>', html, re.S)[0]
        assert f"<td>{declared[key]['split']}</td><td>{direction}</td>" in row
    interval = re.search(r'<td class="key">degradation/stsb/drop</td>.*?</tr>', html, re.S)[0]
    assert 'data-key="degradation/stsb/drop_ci_low" data-value="1.0"' in interval
    row = re.search(r'<td class="key">resource/train_tokens</td>.*?</tr>', html, re.S)[0]
    assert ">280,125<" in row and "<td>no split</td><td>no better side</td>" in row


def test_hostile_names_render_as_text_and_run_nothing(run_page):
    _, html = run_page
    page = parse(html)
    assert not [e for e in page.elements if e.tag in ("script", "iframe", "object", "embed")]
    assert not [(e.tag, name) for e in page.elements for name in e.attrs if name.startswith("on")]
    assert not [e for e in page.elements if any(value.startswith("javascript:") for value in e.attrs.values())]
    text = "".join(page.text)
    assert f"task/test_f1_{HOSTILE}" in text and f"/data/{HOSTILE}.txt" in text and f"data.name={HOSTILE}" in text
    assert f"fairness/names/group/{HOSTILE_GROUP}/recall" in text
    assert HOSTILE not in html and HOSTILE_GROUP not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_figures_are_inlined_svg_images_that_parse(run_page):
    _, html = run_page
    images = [e for e in parse(html).elements if e.tag == "img"]
    alts = {image.attrs["alt"] for image in images}
    assert {"reliability diagram (test)", "cka per layer"} <= alts
    assert "names: recall per group (95% bootstrap intervals)" in alts  # the hostile group is drawn among them
    for image in images:
        prefix = "data:image/svg+xml;base64,"
        assert image.attrs["src"].startswith(prefix)  # nothing fetched at view time
        svg = ET.fromstring(base64.b64decode(image.attrs["src"].removeprefix(prefix)))
        assert svg.tag.endswith("svg")
        assert not list(svg.iter("{http://www.w3.org/2000/svg}script"))
    assert '<link rel="icon" href="data:,">' in html and "http://" not in html.replace("http://www.w3.org", "")


def test_the_page_shows_the_config_changes_provenance_and_links_to_the_model(run_page):
    run_dir, html = run_page
    assert "abc123" in html and "sentence-transformers/all-MiniLM-L6-v2" in html and "f" * 64 in html
    links = {e.attrs["href"] for e in parse(html).elements if e.tag == "a"}
    out = run_dir.parents[1] / "out"
    for target in ("model", "model/README.md", "metrics.json", "env.json", "calibration.json"):
        link = next(link for link in links if link.endswith(target) and "only" in link)
        assert (out / link).resolve() == (run_dir / target).resolve()


def test_config_changes_are_the_keys_that_differ_from_the_defaults(tmp_path):
    from omegaconf import OmegaConf

    run_dir = tmp_path / "run"
    config = OmegaConf.to_container(compose_config("optimizer.lr=0.00123", "method=lora"), resolve=True)
    write_run(run_dir, config, {"task/test_f1": 0.5})
    changes = {key: (default, value) for key, default, value in config_changes(read_run(run_dir), "train")}
    assert changes["optimizer.lr"][1] == 0.00123 and changes["method.name"] == ("full", "lora")
    assert not [key for key in changes if key.startswith(("data.", "trainer.", "model."))]  # only what was changed


def test_a_multirun_page_shows_mean_and_std_of_its_runs_and_links_each_run(tmp_path):
    make_sweep(tmp_path / "multirun" / "stamp", [1e-4, 2e-4], [1, 2])
    out = tmp_path / "out"
    report(tmp_path / "multirun", "--format", "html", "--out", out)
    html = (out / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    by_lr: dict[str, list[dict]] = {}
    for metrics_file in (tmp_path / "multirun").rglob("metrics.json"):
        lr = yaml.safe_load((metrics_file.parent / "config.yaml").read_text())["optimizer"]["lr"]
        by_lr.setdefault(f"{lr:g}", []).append(json.loads(metrics_file.read_text()))
    cells = [e for e in page.elements if e.tag == "td" and "data-mean" in e.attrs]
    assert len(cells) == 2 * len({e.attrs["data-key"] for e in cells})
    rows = re.findall(r'<tr>\n<td class="mono">([^<]+)</td>(.*?)</tr>', html, re.S)
    assert [lr for lr, _ in rows] == ["0.0001", "0.0002"]
    for lr, row in rows:
        for cell in (e for e in parse(row).elements if "data-mean" in e.attrs):
            values = [metrics[cell.attrs["data-key"]] for metrics in by_lr[lr]]
            assert float(cell.attrs["data-mean"]) == statistics.fmean(values)
            assert float(cell.attrs["data-std"]) == statistics.stdev(values) and cell.attrs["data-n"] == "2"
    run_links = [e.attrs["href"] for e in page.elements if e.tag == "a" and e.attrs["href"].startswith("runs/")]
    assert len(set(run_links)) == 4
    for link in set(run_links):
        run_html = (out / link).read_text(encoding="utf-8")
        name = re.search(r'<h1 id="run-name">([^<]+)</h1>', run_html)[1]
        metrics = json.loads((tmp_path / "multirun" / name / "metrics.json").read_text())
        shown = {e.attrs["data-key"]: float(e.attrs["data-value"]) for e in numbers(parse(run_html))}
        assert shown == metrics and '<a href="../report.html">' in run_html


def test_run_names_never_leave_the_output_folder(tmp_path):
    files = page_files({Path("/a"): "../../etc/passwd", Path("/b"): "..", Path("/c"): f"x/{HOSTILE}"})
    assert all(re.fullmatch(r"\d{3}-[A-Za-z0-9._-]+\.html", name) and ".." not in name for name in files.values())
    assert len(set(files.values())) == 3
    with pytest.raises(ValueError, match="outside"):
        inside(tmp_path / "out" / ".." / "escaped.html", tmp_path / "out")
    root = tmp_path / "multirun"
    for job, name in enumerate(("..hidden", "a b <c> & 'd'", "ok")):
        write_run(root / name, run_config(1e-4, job, root / name), run_metrics(random.Random(job)))
    report(root, "--format", "html", "--out", tmp_path / "out")
    written = {path for path in tmp_path.rglob("*.html")}
    assert written and all((tmp_path / "out") in path.parents for path in written)
    assert "a b &lt;c&gt; &amp; &#39;d&#39;" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_a_sweep_page_shows_the_optimisation_history_and_links_each_trial(tmp_path):
    sweep_dir = tmp_path / "sweep"
    runs = make_sweep(sweep_dir / "trials", [1e-4, 2e-4, 3e-4], [1])
    with (sweep_dir / "trials.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["number", "state", "task/val_f1", "optimizer.lr", "run_dir"])
        for number, run in enumerate(runs):
            writer.writerow([number, "COMPLETE", 0.5 + number / 10, 1e-4 * (number + 1), run])
        writer.writerow([3, "PRUNED", "", 4e-4, ""])
    best = {"objectives": ["task/val_f1:max"], "best_trials": [{"number": 2, "values": {"task/val_f1": 0.7}}]}
    (sweep_dir / "best.yaml").write_text(yaml.safe_dump(best))
    report(sweep_dir, "--format", "html", "--out", tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert "optimisation history of task/val_f1" in {e.attrs.get("alt") for e in page.elements if e.tag == "img"}
    links = [e.attrs["href"] for e in page.elements if e.tag == "a" and e.attrs["href"].startswith("runs/")]
    trial_links = re.findall(r'<a href="(runs/[^"]+)">page</a>', html)
    assert len(trial_links) == 3 and set(trial_links) <= set(links)
    assert "PRUNED" in html


def test_the_same_records_give_the_same_bytes(tmp_path):
    make_sweep(tmp_path / "multirun", [1e-4, 2e-4], [1, 2])
    for out in ("first", "second"):
        report(tmp_path / "multirun", "--format", "html", "--out", tmp_path / out)
    for page in (tmp_path / "first").rglob("*.html"):
        assert page.read_bytes() == (tmp_path / "second" / page.relative_to(tmp_path / "first")).read_bytes()


def test_a_run_without_declarations_says_so_and_hub_data_shows_its_revision(tmp_path):
    run_dir = write_run(tmp_path / "old", run_config(1e-4, 1, tmp_path / "old"), {"task/test_f1": 0.5})
    (run_dir / "metrics_info.json").unlink()  # recorded before metrics declared their split and direction
    hub = {"hub_id": "eriktks/conll2003", "config": None, "split": "test", "revision": "abc", "fingerprint": "fp"}
    hub["files"] = [{"path": "/cache/test.parquet", "sha256": "e" * 64}]
    (run_dir / "env.json").write_text(json.dumps({"data_files": [hub]}))
    report(run_dir, "--format", "html", "--out", tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    row = re.search(r'<td class="key">task/test_f1</td>.*?</tr>', html, re.S)[0]
    assert "<td>undeclared</td><td>undeclared</td>" in row
    assert "hub eriktks/conll2003 (default, test)" in html and "revision abc, fingerprint fp" in html
    assert "/cache/test.parquet" in html and "e" * 64 in html
