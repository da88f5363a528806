"""The Python API: compose a config as the command line would, then train or audit with it, in a notebook too.

from ftaudit import audit, compose, train
metrics = train(compose(["model=minilm", "data.max_train_samples=500"]))
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError


def compose(overrides: Sequence[str] = (), config: str = "train") -> DictConfig:
    """The config ``python train.py *overrides`` runs (``config="audit"``: ``python audit.py``'s), with Hydra's own
    settings under ``hydra`` (where the run goes, the overrides its model card quotes)."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("ftaudit.conf", version_base="1.3"):
            return hydra_compose(config, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"the config does not compose: {' '.join(str(err).split())}") from None
    finally:
        GlobalHydra.instance().clear()


def train(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, float]:
    """Fine-tune and audit as ``python train.py`` does; returns the run's metrics. The run goes to ``run_dir``, by
    default ``outputs/runs/<timestamp>`` under the current folder (a resume: the folder it resumes)."""
    from ftaudit.run import train as train_run

    return as_job(train_run, cfg, run_dir or OmegaConf.select(cfg, "trainer.resume"))


def audit(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, float]:
    """Audit a fine-tuned model against its base as ``python audit.py`` does, with ``cfg = compose([...],
    config="audit")``; returns the metrics. The record goes to ``run_dir``, by default ``outputs/audits/<timestamp>``."""
    from ftaudit.run import audit as audit_run

    return as_job(audit_run, cfg, run_dir)


def as_job(run, cfg: DictConfig, run_dir: str | Path | None) -> dict[str, float]:
    """``run(cfg, run_dir)`` as the Hydra job the command line would start: the run's folder is Hydra's output
    folder, and the log goes to a file there too."""
    from ftaudit.sweep.trials import as_hydra_job

    if "hydra" not in cfg:
        raise ConfigError("the config has no hydra node: compose it with ftaudit.compose([...])")
    job = copy.deepcopy(cfg)  # the job takes Hydra's node out of it
    folder = Path(run_dir or job.hydra.run.dir).expanduser().absolute()
    with as_hydra_job(job, folder) as run_cfg:
        return run(run_cfg, folder)
