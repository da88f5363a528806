"""Resuming a killed run where its last finished epoch left it: ``python train.py <same overrides> trainer.resume=<run dir>``.

After every epoch ``EpochCheckpoint`` writes ``checkpoints/last.ckpt``: Lightning's full training state (weights,
optimiser and scheduler, the loops' progress, every callback's state: the best checkpoint so far, the resources used
so far) plus what Lightning leaves out, the random number generators and the run's config. The batch order needs
nothing more: epoch e is shuffled from seed + e (``TaskModule.on_train_epoch_start``). A resume continues in the run's
own folder, with the same config, so that it gives the metrics the uninterrupted run would have given.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError

CHECKPOINT_FOLDER = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
NOT_COMPARED = {"trainer.resume", "hydra"}  # the resume itself, and where Hydra writes


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / CHECKPOINT_FOLDER / LAST_CHECKPOINT


def comparable_config(cfg: DictConfig) -> dict:
    """The config as composed (interpolations unresolved), as dotted keys, without what may differ on a resume."""
    flat = {}

    def visit(node, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                visit(value, f"{prefix}{key}.")
        elif prefix[:-1] not in NOT_COMPARED:
            flat[prefix[:-1]] = node

    visit(
        {key: value for key, value in OmegaConf.to_container(cfg, resolve=False).items() if key not in NOT_COMPARED}, ""
    )
    return flat


def config_differences(original: dict, resumed: dict) -> list[str]:
    """``key (original -> resumed)`` for every key whose value differs or that only one of them has."""
    missing = object()
    return [
        f"{key} ({original.get(key, '<absent>')!r} -> {resumed.get(key, '<absent>')!r})"
        for key in sorted(original.keys() | resumed.keys())
        if original.get(key, missing) != resumed.get(key, missing)
    ]


def check_resumable(cfg: DictConfig, run_dir: Path) -> Path:
    """The checkpoint to resume ``run_dir`` from, after checking that the folder holds an unfinished run with one, and
    that ``cfg`` is the config that run was started with (one line naming the keys that differ)."""
    if not run_dir.is_dir():
        raise ConfigError(f"trainer.resume={run_dir}: no such run directory")
    if (run_dir / "metrics.json").exists():
        raise ConfigError(
            f"trainer.resume={run_dir}: that run finished (it has metrics.json); runs never mix into "
            "another's folder: start a new run instead"
        )
    checkpoint = last_checkpoint(run_dir)
    if not checkpoint.is_file():
        raise ConfigError(
            f"trainer.resume={run_dir}: nothing to resume, {checkpoint} does not exist (the run stopped "
            "before its first epoch ended, or failed); start it afresh"
        )
    state = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True)["callbacks"][
        EpochCheckpoint.__qualname__
    ]
    differences = config_differences(state["config"], comparable_config(cfg))
    if differences:
        raise ConfigError(
            f"trainer.resume={run_dir}: the config differs from the one the run started with at "
            f"{'; '.join(differences)}; resume with the run's own overrides (its .hydra/overrides.yaml)"
        )
    return checkpoint


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """None for a fresh run; for ``trainer.resume``, its checkpoint, once checked (``check_resumable``)."""
    if not cfg.trainer.resume:
        return None
    folder = Path(cfg.trainer.resume).expanduser()
    if folder.resolve() != run_dir.resolve():
        raise ConfigError(
            f"trainer.resume={folder} but this run writes to {run_dir}: a run resumes in its own folder "
            f"(train.py sets hydra.run.dir to it; in Python, pass run_dir={folder})"
        )
    return check_resumable(cfg, folder)


def rng_states() -> dict:
    """Every generator a training step may draw from (dropout, data order helpers), as plain tensors and lists."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
    }


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    random.setstate((states["python_version"], tuple(states["python"]), states["python_gauss"]))


class EpochCheckpoint(L.Callback):
    """Writes ``checkpoints/last.ckpt`` after every epoch, beside it first and then renamed over it, so a kill while
    it is written leaves the previous one; restores the random number generators of a resumed run.

    The generators are saved at the end of an epoch. Before the next epoch's first batch the uninterrupted run draws
    once from torch's: Lightning creates that epoch's batch iterator, and every DataLoader iterator draws a seed for
    its workers. A resumed run created its iterator before the restore (while setting up its optimiser's schedule),
    so one more is created and dropped right after the restore: the same draws follow as in the uninterrupted run.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path):
        self.config, self.path = comparable_config(cfg), last_checkpoint(run_dir)
        self.restored_rng: dict | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(temporary)
        if trainer.is_global_zero:
            os.replace(temporary, self.path)

    def state_dict(self) -> dict:
        return {"config": self.config, "rng": rng_states()}

    def load_state_dict(self, state: dict) -> None:
        self.restored_rng = state["rng"]

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.restored_rng is not None:
            set_rng_states(self.restored_rng)
            iter(trainer.train_dataloader)  # the seed draw of the batch iterator the uninterrupted run creates
