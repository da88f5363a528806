"""The entry points (``ftaudit train|sweep|audit|report``, and ``train.py``, ``audit.py``, ``sweep.py``), and what is
checked before Hydra writes anything.

Hydra creates the run directory and writes ``.hydra/`` before the run starts; a finished run directory given
again (``hydra.run.dir=...``), or a folder that cannot be written, is refused here first, in one line. A resume
(``trainer.resume=<run dir>``) is checked here too (an unfinished run of the same config), and its folder becomes
Hydra's run directory.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError, UserError, exit_on_user_error

# The command ``ftaudit COMMAND ...`` dispatched to (None under train.py, sweep.py or audit.py): Hydra parses the
# command line without it, and each job puts it back (``restore_command``).
dispatched_command: str | None = None
HYDRA_FLAGS_WITHOUT_RUN = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion", "-sc"}


def finished_runs(folder: Path) -> list[Path]:
    """Run records (``metrics.json``) in ``folder`` or one level below it (the jobs of a multirun)."""
    return [path.parent for path in (*folder.glob("metrics.json"), *folder.glob("*/metrics.json"))]


def check_writable(folder: Path) -> None:
    """Create ``folder`` (as Hydra is about to) and write a scratch file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(
            f"cannot write the run record under {folder}: {err.strerror or err}; choose a writable "
            "folder with hydra.run.dir=... (or run from another directory)"
        ) from None


def check_launch(config_name: str, args: list[str], fresh_run_dir: bool) -> list[str]:
    """Compose the config as Hydra will (one line for what does not compose), then refuse a finished run directory
    (when the run must start in a fresh one) and an unwritable output folder. Returns the overrides to add: a resume
    runs in the folder it resumes."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if HYDRA_FLAGS_WITHOUT_RUN & set(args) or "LOCAL_RANK" in os.environ:  # help, or a DDP worker of a started run
        return []
    multirun = bool({"-m", "--multirun"} & set(args))
    overrides = [arg for arg in args if not arg.startswith("-")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("ftaudit.conf", version_base="1.3"):
            if multirun:  # sweeps in the overrides (seed=1,2) do not compose as one config
                folder = Path(
                    next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweep.dir=")), "outputs")
                )
            else:
                cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
                multirun = cfg.hydra.mode == RunMode.MULTIRUN  # an experiment may set it (experiment=methods)
                folder = Path(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"the config does not compose: {' '.join(str(err).split())}") from None
    finally:
        GlobalHydra.instance().clear()
    if any(override.startswith("trainer.resume=") for override in overrides) and (multirun or config_name != "train"):
        raise ConfigError(
            "trainer.resume resumes one python train.py run: launch it without -m (a sweep continues "
            "by running its command again; its trials are not resumed one by one)"
        )
    if not multirun and OmegaConf.select(cfg, "trainer.resume"):
        return resume_launch(cfg, overrides)
    done = finished_runs(folder) if fresh_run_dir else []
    if done:
        raise ConfigError(
            f"{folder} already holds a finished run ({done[0] / 'metrics.json'}); runs never mix into "
            "another's folder: choose a new hydra.run.dir (or hydra.sweep.dir)"
        )
    check_writable(folder if folder.exists() else folder.parent)
    return []


def resume_launch(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """The checks of a resume before Hydra rewrites anything in its folder; it becomes Hydra's run directory."""
    from ftaudit.resume import check_resumable
    from ftaudit.sweep.space import format_value

    folder = Path(cfg.trainer.resume).expanduser()
    given_dir = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra.run.dir=")), None)
    if given_dir is not None and Path(given_dir).resolve() != folder.resolve():
        raise ConfigError(
            f"trainer.resume={folder} and hydra.run.dir={given_dir}: a run resumes in its own folder; "
            "drop hydra.run.dir"
        )
    check_resumable(cfg, folder)
    check_writable(folder)
    return [f"hydra.run.dir={format_value(str(folder))}"]


def launch(main: Callable[[], object], config_name: str, fresh_run_dir: bool = True) -> None:
    """Check the launch in one line, then hand over to the Hydra ``main``."""
    try:
        sys.argv += check_launch(config_name, sys.argv[1:], fresh_run_dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    main()


def restore_command(task: Callable[[DictConfig], None]) -> Callable[[DictConfig], None]:
    """Once Hydra has parsed its arguments, give ``sys.argv`` back the command it was dispatched to: the run records
    its command line, and Lightning's DDP starts each extra process by running that command line again."""

    @functools.wraps(task)
    def run(cfg: DictConfig) -> None:
        if dispatched_command and sys.argv[1:2] != [dispatched_command]:  # a multirun's later jobs: already back
            sys.argv.insert(1, dispatched_command)
        task(cfg)

    return run


@hydra.main(version_base="1.3", config_path="pkg://ftaudit.conf", config_name="train")
@restore_command
@exit_on_user_error
def train_main(cfg: DictConfig) -> None:
    from ftaudit.run import train

    train(cfg, Path(HydraConfig.get().runtime.output_dir))


@hydra.main(version_base="1.3", config_path="pkg://ftaudit.conf", config_name="audit")
@restore_command
@exit_on_user_error
def audit_main(cfg: DictConfig) -> None:
    from ftaudit.run import audit

    audit(cfg, Path(HydraConfig.get().runtime.output_dir))


@hydra.main(version_base="1.3", config_path="pkg://ftaudit.conf", config_name="sweep")
@restore_command
@exit_on_user_error
def sweep_main(cfg: DictConfig) -> None:
    from ftaudit.sweep import run_sweep
    from ftaudit.sweep.workers import SweepInterrupted

    hydra_cfg = HydraConfig.get()
    # `-m` starts several workers (e.g. +sweep.worker=0,1,2,3 on a SLURM launcher): they share the sweep folder.
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    sweep_dir = Path(hydra_cfg.sweep.dir if multirun else hydra_cfg.runtime.output_dir).resolve()
    try:
        run_sweep(cfg, sweep_dir, list(hydra_cfg.overrides.task))
    except SweepInterrupted as stopped:  # Ctrl-C / SIGTERM: one line, and the shell's status for an interrupt
        print(stopped, file=sys.stderr, flush=True)
        sys.exit(130)


def train_cli() -> None:
    launch(train_main, "train")


def audit_cli() -> None:
    launch(audit_main, "audit")


def sweep_cli() -> None:
    launch(sweep_main, "sweep", fresh_run_dir=False)  # rerunning a sweep continues its study, in its folder


def report_cli() -> None:
    from ftaudit.report.__main__ import main as report_main

    report_main(sys.argv[1:], prog="ftaudit report")


COMMANDS = {"train": train_cli, "sweep": sweep_cli, "audit": audit_cli, "report": report_cli}
USAGE = (
    f"usage: ftaudit {{{','.join(COMMANDS)}}} ARGS...  (train, sweep and audit take Hydra overrides, "
    "e.g. ftaudit train model=minilm; ftaudit COMMAND --help)"
)


def main() -> None:
    """``ftaudit COMMAND ARGS...`` (the ``ftaudit`` console script, ``python -m ftaudit``): the command runs as its own
    entry point would, with ``ARGS`` as its command line."""
    global dispatched_command
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in ("-h", "--help"):
        print(USAGE)
        return
    if command not in COMMANDS:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    dispatched_command = command
    del sys.argv[1]
    COMMANDS[command]()
