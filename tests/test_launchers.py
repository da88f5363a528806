"""Hydra's submitit launcher: train.py and sweep.py jobs as submitit jobs on this machine (submitit_local), and the
cluster config (hydra/launcher=slurm) reaching the sbatch script."""

import json
import os
import stat
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from optuna.trial import TrialState

from ftaudit.config import CONFIG_DIR
from tests.conftest import TINY_RUN, run_script
from tests.sweep.conftest import TINY_SWEEP

pytest.importorskip(
    "hydra_plugins.hydra_submitit_launcher",
    reason="hydra-submitit-launcher is not installed (pip install -e '.[dev]' or '.[slurm]')",
)


@pytest.mark.slow
def test_train_multirun_as_submitit_jobs_records_every_job(tmp_path):
    result = run_script(
        "-m",
        "hydra/launcher=submitit_local",
        *TINY_RUN,
        "trainer.max_epochs=1",
        "logger=csv",
        "probes.degradation=[]",
        "seed=1,2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (multirun,) = (tmp_path / "outputs" / "multirun").iterdir()
    jobs = sorted(path for path in multirun.iterdir() if path.is_dir() and not path.name.startswith("."))
    assert [job.name for job in jobs] == ["0", "1"]
    for seed, job in enumerate(jobs, start=1):
        assert {"metrics.json", "env.json", "config.yaml", "train.log"} <= {path.name for path in job.iterdir()}
        assert "task/test_f1" in json.loads((job / "metrics.json").read_text())
        assert json.loads((job / "env.json").read_text())["seed"] == seed
    submitted = sorted((multirun / ".submitit").glob("*/*_result.pkl"))
    assert len(submitted) == 2  # two submitit jobs, each with its result


@pytest.mark.slow
def test_sweep_workers_as_submitit_jobs_share_one_study(tmp_path):
    result = run_script(
        "-m",
        "hydra/launcher=submitit_local",
        "+sweep.worker=range(2)",
        *TINY_SWEEP,
        "sweep.n_trials=2",
        cwd=tmp_path,
        script="sweep.py",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = tmp_path / "outputs" / "sweeps" / "lr_epochs"
    study = optuna.load_study(study_name="lr_epochs", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 2
    assert all((Path(trial.user_attrs["run_dir"]) / "metrics.json").is_file() for trial in study.trials)
    assert sorted(path.name for path in (sweep_dir / "workers").iterdir()) == ["0", "1"]
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 2
    assert (sweep_dir / "best.yaml").is_file() and (sweep_dir / "trials.csv").is_file()


def test_slurm_launcher_config_reaches_the_sbatch_script(tmp_path, monkeypatch):
    """hydra/launcher=slurm composes, and submitit writes its settings into the job script. A stand-in sbatch keeps
    the script and refuses the job, as a cluster without room would (there is no SLURM here)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name, body in {
        "srun": "exit 0",
        "sbatch": f'cp "$1" {tmp_path}/job.sh; echo "sbatch: error: no cluster" >&2; exit 1',
    }.items():
        (fake_bin / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake_bin / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "sweep", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=a100"], return_hydra_config=True
        )
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    with pytest.raises(Exception, match="no cluster"):
        launcher.launch([["+sweep.worker=0"]], initial_job_idx=0)
    script = (tmp_path / "job.sh").read_text()
    for line in (
        "#SBATCH --partition=a100",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=64GB",
        "#SBATCH --time=1440",
        "#SBATCH --ntasks-per-node=1",
    ):
        assert line in script.splitlines()
