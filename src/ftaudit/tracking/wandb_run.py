"""Weights & Biases for one run: an offline-by-default logger, the run's record as summary/tables/images, and a
guaranteed ``wandb.finish()`` so runs sharing a process (multirun jobs, sweep trials) never merge."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import sys
from pathlib import Path

from ftaudit.tracking.loggers import default_group, default_name

# The run's own folders that are not part of its record: logger output and W&B's local copy.
NOT_RECORD_FOLDERS = ("csv", "wandb", "tensorboard", "mlartifacts", "checkpoints", ".hydra")
# F1 per entity type (NER) or per label (classification); strict F1 and macro F1 are neither
PER_TYPE_F1 = re.compile(r"^task/test_f1_(?!strict$|macro$)(?P<type>.+)$")


def wandb_mode() -> str:
    """``$WANDB_MODE`` when set (online, offline, disabled), else offline: a run never waits on the network."""
    return os.environ.get("WANDB_MODE") or "offline"


def wandb_logger(
    save_dir: str,
    project: str = "ftaudit",
    entity: str | None = None,
    group: str | None = None,
    name: str | None = None,
    tags: list[str] | tuple = (),
    job_type: str = "train",
    notes: str | None = None,
):
    """A Lightning ``WandbLogger`` (built by ``conf/logger/wandb.yaml``); W&B's files go to ``save_dir/wandb/``."""
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    quiet = wandb.Settings(silent=True, quiet=True, console="off", show_info=False, show_warnings=False)
    wandb.setup(settings=quiet)  # before init: Lightning's own init arguments would warn otherwise
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        entity=entity,
        group=group or default_group(),
        name=name or default_name(),
        tags=list(tags),
        job_type=job_type,
        notes=notes,
        mode=wandb_mode(),
        settings=quiet,
        log_model=False,
    )


def record_files(run_dir: Path, suffix: str) -> list[Path]:
    """The run's own files with this suffix (probe plots, per-group CSVs), sorted; logger and W&B folders left out."""
    return sorted(
        path for path in run_dir.rglob(f"*{suffix}") if path.relative_to(run_dir).parts[0] not in NOT_RECORD_FOLDERS
    )


def csv_table(path: Path):
    import wandb

    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        return None
    return wandb.Table(columns=rows[0], data=[[_number_or_text(cell) for cell in row] for row in rows[1:]])


def _number_or_text(cell: str):
    try:
        return float(cell)
    except ValueError:
        return cell


def publish_wandb(logger, run_dir: Path, metrics: dict[str, float]) -> None:
    """Every ``metrics.json`` key into the summary, per-type F1 and the run's CSVs as tables, its PNGs as images;
    then finish the W&B run and print where it is."""
    import wandb

    run = logger.experiment
    run.summary.update(metrics)
    media = {}
    per_type = sorted((match["type"], value) for key, value in metrics.items() if (match := PER_TYPE_F1.match(key)))
    if per_type:
        media["tables/test_f1_per_type"] = wandb.Table(columns=["type", "f1"], data=[list(row) for row in per_type])
    for path in record_files(run_dir, ".csv"):
        table = csv_table(path)
        if table is not None:
            media[f"tables/{path.relative_to(run_dir).with_suffix('').as_posix()}"] = table
    for path in record_files(run_dir, ".png"):
        media[f"plots/{path.relative_to(run_dir).with_suffix('').as_posix()}"] = wandb.Image(str(path))
    if media:
        run.log(media)
    where = run.url if wandb_mode() == "online" else f"{wandb_mode()}, files in {Path(run.dir).parent}"
    print(f"W&B run: {run.path} ({where})", flush=True)
    finish_wandb_run(exit_code=0)


def finish_wandb_run(exit_code: int, stopped_by: BaseException | None = None) -> None:
    """Close the process's current W&B run, if any; a run left open would swallow the next job's logs."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        if stopped_by is not None:  # tells a pruned sweep trial (TrialPruned) from a crash in the dashboard
            wandb.run.summary["stopped_by"] = type(stopped_by).__name__
        wandb.run.finish(exit_code=exit_code)


@contextlib.contextmanager
def wandb_run_closed():
    """Finish the W&B run when the block ends; a run that raised is marked failed (exit code 1)."""
    try:
        yield
    except BaseException as err:
        finish_wandb_run(exit_code=1, stopped_by=err)
        raise
    finish_wandb_run(exit_code=0)
