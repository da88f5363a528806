"""``python -m ftaudit.report``: grouping, mean ± std and n, best per column, byte-identical output, speed."""

from __future__ import annotations

import csv
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from ftaudit.report.__main__ import main
from ftaudit.report.records import find_runs
from ftaudit.report.table import default_group_keys
from tests.report.synthetic import make_sweep, run_config, task_run, write_run

LEARNING_RATES = [5e-5, 1e-4, 2e-4]


@pytest.fixture
def sweep(tmp_path) -> Path:
    make_sweep(tmp_path / "multirun" / "2026-01-01_00-00-00", LEARNING_RATES, [1, 2, 3])
    return tmp_path / "multirun"


def report(*args) -> None:
    main([str(arg) for arg in args])


def independent_means(root: Path, group_key: str, metric: str) -> dict[str, tuple[float, float, int]]:
    """Straight from the files: every metrics.json under root, grouped by one config value."""
    values = defaultdict(list)
    for metrics_file in root.rglob("metrics.json"):
        config = yaml.safe_load((metrics_file.parent / "config.yaml").read_text())
        for part in group_key.split("."):
            config = config[part]
        values[f"{config:g}"].append(json.loads(metrics_file.read_text())[metric])
    return {key: (statistics.mean(v), statistics.stdev(v), len(v)) for key, v in values.items()}


def test_table_means_equal_the_mean_of_the_runs_metrics(sweep, tmp_path):
    report(sweep, "--out", tmp_path / "out")
    rows = {row["optimizer.lr"]: row for row in csv.DictReader((tmp_path / "out" / "table.csv").open())}
    for metric in ("task/test_f1", "degradation/stsb/drop", "resource/train_seconds"):
        expected = independent_means(sweep, "optimizer.lr", metric)
        assert set(rows) == set(expected)
        for lr, (mean, std, n) in expected.items():
            assert float(rows[lr][f"{metric}/mean"]) == pytest.approx(mean, rel=1e-12)
            assert float(rows[lr][f"{metric}/std"]) == pytest.approx(std, rel=1e-12)
            assert int(rows[lr][f"{metric}/n"]) == n == 3
    markdown = (tmp_path / "out" / "table.md").read_text()
    mean, std, _ = independent_means(sweep, "optimizer.lr", "task/test_f1")["0.0001"]
    assert f"{mean:.4f} ± {std:.4f}" in markdown


def test_default_groups_are_the_varying_keys_without_seed(sweep):
    runs = find_runs([sweep])
    assert len(runs) == 9  # the failed job (no metrics.json) and Hydra's .hydra copies are no records
    assert default_group_keys(runs) == ["optimizer.lr"]  # seed and the per-run logger save_dir are left out


def test_runs_of_two_tasks_are_grouped_by_task_with_each_tasks_columns(tmp_path):
    rng = random.Random(0)
    for task in ("ner", "classification"):
        for lr in (1e-4, 2e-4):
            task_run(tmp_path / "runs", task, lr, 1, rng)
    runs = find_runs([tmp_path / "runs"])
    assert default_group_keys(runs) == ["task.name", "optimizer.lr"]  # the data settings come with the task
    report(tmp_path / "runs", "--out", tmp_path / "out", "--format", "md")
    header, _, *body = (tmp_path / "out" / "table.md").read_text().splitlines()
    # each task's headline on test, accuracy, each headline on validation: in the order the runs were found
    assert header == (
        "| task.name | optimizer.lr | n | task/test_f1_macro ↑ | task/test_f1 ↑ | task/test_accuracy ↑ | "
        "task/val_f1_macro ↑ | task/val_f1 ↑ | degradation/cka/drop ↓ | degradation/stsb/drop ↓ | "
        "fairness/names/recall_gap ↓ | fairness/names/flip_rate_gap ↓ | resource/train_seconds ↓ |"
    )
    assert [row.split(" | ")[0] for row in body] == ["| classification"] * 2 + ["| ner"] * 2
    assert (
        body[0].split(" | ")[4] == "—" and body[2].split(" | ")[3] == "—"
    )  # PhraseBank has no entity F1, NER no macro F1
    # one tradeoff plot per headline, each against a cost its task's runs recorded (the first: CKA for NER, STS-B here)
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == [
        "fairness_flip_rate.png",
        "fairness_recall.png",
        "tradeoff_f1.png",
        "tradeoff_f1_macro.png",
    ]


def test_a_name_groups_the_runs_without_the_settings_it_brings(tmp_path):
    """A methods multirun: each method brings its own settings and learning rate; method.name says it all."""
    for method, lr, adapter in (("full", 2e-4, None), ("lora", 2e-3, 8), ("ia3", 3e-3, None)):
        for seed in (1, 2):
            run_dir = tmp_path / "runs" / f"{method}-{seed}"
            config = run_config(lr, seed, run_dir) | {"method": {"name": method, "adapter": {"r": adapter}}}
            write_run(run_dir, config, {"task/test_f1": 0.8, "task/val_f1": 0.8})
    assert default_group_keys(find_runs([tmp_path / "runs"])) == ["method.name"]


def test_best_per_column_is_bold_in_the_right_direction(tmp_path):
    for lr, f1, drop in ((1e-4, 0.80, 5.0), (2e-4, 0.85, 9.0)):
        run_dir = tmp_path / "runs" / str(lr)
        write_run(run_dir, run_config(lr, 1, run_dir), {"task/test_f1": f1, "degradation/stsb/drop": drop})
    report(tmp_path / "runs", "--out", tmp_path / "out", "--format", "md,latex")
    markdown = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert markdown[0] == "| optimizer.lr | n | task/test_f1 ↑ | degradation/stsb/drop ↓ |"
    assert markdown[2] == "| 0.0001 | 1 | 0.8000 | **5.000** |"
    assert markdown[3] == "| 0.0002 | 1 | **0.8500** | 9.000 |"
    assert r"\textbf{0.8500}" in (tmp_path / "out" / "table.tex").read_text()
    assert not (tmp_path / "out" / "table.csv").exists()


def test_direction_is_what_the_runs_declared_never_guessed_from_the_name(tmp_path):
    """A p-value of a gap and an is-estimate flag name no direction, whatever their words say; a run recorded before
    metrics were declared (no metrics_info.json) gets no bold either."""
    values = {
        "fairness/names/recall_gap_p_value": (0.01, 0.5),
        "resource/energy_is_estimate": (0.0, 1.0),
        "fairness/names/recall_gap": (0.2, 0.1),
    }
    for index, lr in enumerate((1e-4, 2e-4)):
        run_dir = tmp_path / "runs" / str(lr)
        write_run(run_dir, run_config(lr, 1, run_dir), {key: pair[index] for key, pair in values.items()})
    old_run = tmp_path / "old" / "0"
    write_run(old_run, run_config(3e-4, 1, old_run), {"task/extra_score": 1.0})
    (old_run / "metrics_info.json").unlink()
    report(tmp_path / "runs", tmp_path / "old", "--out", tmp_path / "out", "--format", "md", "--metrics", "**")
    header, _, *body = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert header == (
        "| optimizer.lr | n | fairness/names/recall_gap ↓ | fairness/names/recall_gap_p_value | "
        "resource/energy_is_estimate | task/extra_score |"
    )
    assert body[0] == "| 0.0001 | 1 | 0.2000 | 0.0100 | 0.000 | — |"
    assert body[1] == "| 0.0002 | 1 | **0.1000** | 0.5000 | 1.000 | — |"


def test_output_is_byte_identical_on_rerun(sweep, tmp_path):
    make_sweep(tmp_path / "other", [1e-3], [1, 2], rng_seed=1)
    report(sweep, tmp_path / "other", "--out", tmp_path / "first")
    report(tmp_path / "other", sweep, "--out", tmp_path / "second")  # order of the arguments does not matter
    first, second = sorted((tmp_path / "first").iterdir()), sorted((tmp_path / "second").iterdir())
    assert [p.name for p in first] == ["fairness.png", "table.csv", "table.md", "table.tex", "tradeoff.png"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_hundred_runs_in_under_five_seconds_without_torch(tmp_path):
    make_sweep(tmp_path / "runs", [1e-5 * (i + 1) for i in range(10)], list(range(10)))
    code = (
        "import sys; from ftaudit.report.__main__ import main; main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules and 'wandb' not in sys.modules"
    )
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("100 runs in 10 groups (by optimizer.lr)")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # CPU time, not wall time, is what this code controls on a shared machine; wall time printed for the record.
    print(f"report on 100 runs: {wall:.2f} s wall, {cpu:.2f} s CPU")
    assert cpu < 5.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing"], "does not exist"),
        (["runs", "--group-by", "optimiser.lr"], "--group-by optimiser.lr: not a config key"),
        (["runs", "--metrics", "task/nothing"], "--metrics 'task/nothing' matches no metric"),
        (["runs", "--format", "html,pdf"], "--format pdf: choose from md,latex,csv,html"),
        (["empty"], "no run records"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, args, message, monkeypatch):
    make_sweep(tmp_path / "runs", [1e-4], [1])
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        report(*args)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
