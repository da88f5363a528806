"""The ``ftaudit`` command: its dispatch to train, sweep, audit and report, and the installed wheel end to end."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from ftaudit import cli
from tests.conftest import REPO, TINY_RUN
from tests.test_hardware import DDP_ON_CPU
from tests.tracking.test_record import commit_all
from tests.wheels import build_wheel, copy_checkout, install


@pytest.fixture
def dispatch(monkeypatch):
    """Run ``ftaudit ARGS...`` in-process with recording stand-ins for the commands; returns what each one saw."""
    seen = []
    monkeypatch.setattr(cli, "dispatched_command", None)
    monkeypatch.setattr(
        cli, "COMMANDS", {name: lambda name=name: seen.append((name, list(sys.argv))) for name in cli.COMMANDS}
    )

    def run(*args: str):
        monkeypatch.setattr(sys, "argv", ["/venv/bin/ftaudit", *args])
        cli.main()
        return seen

    return run


@pytest.mark.parametrize("args", [(), ("tran", "seed=1"), ("seed=1",)])
def test_without_a_known_command_one_usage_line_and_status_2(dispatch, capsys, args):
    with pytest.raises(SystemExit) as stopped:
        dispatch(*args)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("usage: ftaudit {train,sweep,audit,report}")


def test_help_prints_the_usage_line(dispatch, capsys):
    assert dispatch("--help") == []
    assert capsys.readouterr().out.startswith("usage: ftaudit {train,sweep,audit,report}")


@pytest.mark.parametrize("command", ["train", "sweep", "audit", "report"])
def test_the_command_sees_its_arguments_without_the_subcommand(dispatch, command):
    assert dispatch(command, "-m", "seed=1,2", "--cfg", "job") == [
        (command, ["/venv/bin/ftaudit", "-m", "seed=1,2", "--cfg", "job"])
    ]


def test_each_job_gets_the_subcommand_back_once(dispatch, monkeypatch):
    """The run records the command line, and Lightning's DDP re-runs it: both need the subcommand."""
    dispatch("train", "-m", "seed=1,2")
    seen = []
    job = cli.restore_command(lambda cfg: seen.append(list(sys.argv)))
    job(None)
    job(None)  # a multirun's second job, in the same process
    assert seen == [["/venv/bin/ftaudit", "train", "-m", "seed=1,2"]] * 2


def test_hydra_flags_pass_through(monkeypatch, capsys):
    """``ftaudit train --cfg job <overrides>``: Hydra parses the command line, without the subcommand."""
    monkeypatch.setattr(sys, "argv", ["ftaudit", "train", "--cfg", "job", "model=tiny", "seed=7"])
    monkeypatch.setattr(cli, "dispatched_command", None)
    try:
        cli.main()
    finally:
        GlobalHydra.instance().clear()
    printed = capsys.readouterr().out
    assert printed.startswith("seed: 7\n") and "  name: tiny\n" in printed


def test_report_takes_its_own_arguments(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "argv", ["ftaudit", "report", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err


def test_report_usage_names_the_command_typed(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ftaudit", "report"])  # no run folder: argparse's usage line and status 2
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("usage: ftaudit report [-h]")


@pytest.mark.slow
def test_installed_wheel_runs_from_any_directory(tmp_path):
    """The wheel, installed non-editable on its own, carries its config tree: ``ftaudit train`` from another folder
    writes its run record under that folder's ``outputs/``, and claims no git commit for the installed code, not
    even that of a repository around it."""
    source, wheels, site, cwd = tmp_path / "source", tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    cwd.mkdir()
    commit_all(tmp_path)
    wheel = build_wheel(copy_checkout(source), wheels)
    assert "ftaudit/conf/experiment/quickstart.yaml" in zipfile.ZipFile(wheel).namelist()
    install(wheel, site)

    # The venv's packages (torch, ...) with the installed ftaudit first: not the checkout's, editable or on PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(site)}
    imported = subprocess.run(
        [sys.executable, "-c", "import ftaudit; print(ftaudit.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).is_relative_to(site)
    result = subprocess.run(
        [
            sys.executable,
            str(site / "bin" / "ftaudit"),
            "train",
            "experiment=quickstart",
            *TINY_RUN,
            "trainer.max_epochs=1",
            "logger=csv",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    assert (run_dir / "metrics.json").is_file()
    env_record = json.loads((run_dir / "env.json").read_text())
    assert env_record["command"][1:3] == [str(site / "bin" / "ftaudit"), "train"]
    assert env_record["git_commit"] is None and env_record["packages"]["ftaudit"]
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "train.log").is_file()
    assert not (REPO / "outputs" / "runs" / run_dir.name).exists()


@pytest.mark.slow
def test_ddp_processes_rerun_the_ftaudit_command(tmp_path):
    """Lightning starts each extra DDP process by running this process's command line again: ``ftaudit train``'s
    must still say ``train`` (without it the second process would stop at the usage line and the first wait)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftaudit",
            "train",
            *TINY_RUN,
            *DDP_ON_CPU,
            "trainer.max_epochs=1",
            "probes.degradation=[]",
            "probes.fairness.enabled=false",
            "logger=none",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert (run_dir / "train_ddp_process_1.log").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["resource/devices"] == 2
