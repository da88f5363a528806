"""``python train.py -m`` runs a plain grid with Hydra's basic sweeper: one run directory and metrics.json per job."""

import json

import pytest
import yaml

from tests.conftest import TINY_SUBSET_RUN, run_script

pytestmark = pytest.mark.slow  # a real grid multirun (subprocess)


def test_grid_multirun_gives_every_job_its_own_run(tmp_path):
    result = run_script("-m", *TINY_SUBSET_RUN, "optimizer.lr=1e-5,3e-5", "trainer.max_epochs=1,2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (multirun,) = (tmp_path / "outputs" / "multirun").iterdir()
    jobs = sorted(path for path in multirun.iterdir() if path.is_dir() and not path.name.startswith("."))
    assert [job.name for job in jobs] == ["0", "1", "2", "3"]
    combinations, tokens = set(), {}
    for job in jobs:
        cfg = yaml.safe_load((job / "config.yaml").read_text())
        metrics = json.loads((job / "metrics.json").read_text())
        key = (cfg["optimizer"]["lr"], cfg["trainer"]["max_epochs"])
        combinations.add(key)
        tokens[key] = metrics["resource/train_tokens"]
        assert 0 <= metrics["task/val_f1"] <= 1
    assert combinations == {(1e-5, 1), (1e-5, 2), (3e-5, 1), (3e-5, 2)}
    assert tokens[(1e-5, 2)] == 2 * tokens[(1e-5, 1)] > 0  # each job really trained its own number of epochs
