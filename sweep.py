"""Search the training config with Optuna: ``python sweep.py model=minilm sweep.n_trials=20`` (README: Sweeps)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ftaudit.errors import exit_on_user_error
from ftaudit.sweep import run_sweep
from ftaudit.sweep.workers import SweepInterrupted


@hydra.main(version_base="1.3", config_path="pkg://ftaudit.conf", config_name="sweep")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    # `-m` starts several workers (e.g. +sweep.worker=0,1,2,3 on a SLURM launcher): they share the sweep folder.
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    sweep_dir = Path(hydra_cfg.sweep.dir if multirun else hydra_cfg.runtime.output_dir).resolve()
    try:
        run_sweep(cfg, sweep_dir, list(hydra_cfg.overrides.task))
    except SweepInterrupted as stopped:  # Ctrl-C / SIGTERM: one line, and the shell's status for an interrupt
        print(stopped, file=sys.stderr, flush=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
