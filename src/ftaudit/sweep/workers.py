"""Who runs which trial, and what becomes of a trial whose worker is gone.

A worker killed outright (SIGKILL, out of memory, a lost node) leaves its trial RUNNING. Another worker fails it as
soon as it can tell the worker is dead: on the same host by its process id, on any host through the RDB storage's
heartbeat. A worker that is told to stop (Ctrl-C, SIGTERM from ``kill`` or SLURM, submitit's time-limit SIGUSR2)
fails its own trial on the way out.
Either way the trial's folder gets ``error.txt`` saying how the trial ended.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from datetime import datetime
from pathlib import Path

import optuna
import psutil
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ftaudit.files import atomic_write_text

log = logging.getLogger(__name__)

DEAD_PROCESS = "interrupted: its worker process died"
# SIGUSR2 is what submitit's SLURM jobs get shortly before their time limit (hydra.launcher.signal_delay_s).
STOP_SIGNALS = {
    signal.SIGINT: "SIGINT (Ctrl-C)",
    signal.SIGTERM: "SIGTERM",
    signal.SIGUSR2: "SIGUSR2 (submitit: the time limit is near)",
}


def worker_id() -> dict:
    process = psutil.Process()
    return {"host": socket.gethostname(), "pid": process.pid, "started": process.create_time()}


def is_alive(worker: dict) -> bool:
    try:
        return psutil.Process(worker["pid"]).create_time() == worker["started"]
    except psutil.NoSuchProcess:
        return False


def describe(worker: dict | None) -> str:
    return f"pid {worker['pid']} on {worker['host']}" if worker else "a worker that did not record itself"


def write_error_file(trial: FrozenTrial, reason: str, how: str) -> None:
    """The trial's folder (when it has one on this disk) gets ``error.txt``, as a trial that raised does."""
    run_dir = trial.user_attrs.get("run_dir")
    if run_dir and Path(run_dir).is_dir():
        atomic_write_text(Path(run_dir) / "error.txt", f"{reason}\n{how}\n")


def fail_running_trial(study: optuna.Study, trial: FrozenTrial, reason: str, how: str) -> bool:
    """A RUNNING trial -> FAIL with ``reason`` as its error; False when another worker got there first."""
    try:
        optuna.Trial(study, trial._trial_id).set_user_attr("error", reason)
    except UpdateFinishedTrialError:
        return False
    if study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True).state != TrialState.FAIL:
        return False
    write_error_file(trial, reason, how)
    log.warning("trial %d marked failed: %s", trial.number, reason)
    return True


def heartbeat_error(grace_seconds: int) -> str:
    return f"interrupted: its worker sent no heartbeat for {grace_seconds} s"


def stale_trial_recorder(grace_seconds: int):
    """The RDB storage's callback for a trial its heartbeat check has just failed. Optuna fails the trial before the
    callback runs, so its reason is kept on the study (a finished trial takes no new attributes)."""

    def record(study: optuna.Study, trial: FrozenTrial) -> None:
        reason = heartbeat_error(grace_seconds)
        study.set_user_attr(f"error of trial {trial.number}", reason)
        write_error_file(
            trial,
            reason,
            f"Its worker ({describe(trial.user_attrs.get('worker'))}) stopped sending "
            f"heartbeats; {describe(worker_id())} failed it at {datetime.now():%Y-%m-%d %H:%M:%S}.",
        )
        log.warning("trial %d marked failed: %s", trial.number, reason)

    return record


def trial_errors(study: optuna.Study) -> dict[int, str]:
    """Each failed trial's reason, wherever it was recorded (on the trial, or on the study by the heartbeat check)."""
    errors = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        errors[trial.number] = trial.user_attrs.get("error") or study.user_attrs.get(f"error of trial {trial.number}")
    return errors


def fail_dead_trials(study: optuna.Study) -> None:
    """Fails the trials whose worker is known to be dead: by the storage heartbeat (RDB storages; any host) and by
    process id (workers on this host). Called when a worker starts, after each of its trials, and before it writes
    the outputs."""
    optuna.storages.fail_stale_trials(study)  # nothing to do for a storage without heartbeat (journal files)
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker["host"] == host and not is_alive(worker):
            fail_running_trial(
                study,
                trial,
                DEAD_PROCESS,
                f"Its worker ({describe(worker)}) was no longer running "
                f"when {describe(worker_id())} checked at {datetime.now():%Y-%m-%d %H:%M:%S}.",
            )


def running_elsewhere(study: optuna.Study, grace_seconds: int | None) -> list[str]:
    """One line per RUNNING trial whose worker this process cannot check (another host): what happens if it died."""
    host = socket.gethostname()
    if grace_seconds is None:
        fate = "if its worker died, it stays RUNNING (a journal file has no heartbeat) until a sweep started on that host fails it"
    else:
        fate = f"if its worker died, the heartbeat check fails it {grace_seconds} s after the last beat"
    return [
        f"trial {trial.number} is running on {describe(trial.user_attrs.get('worker'))}, which cannot be checked "
        f"from {host}: {fate}"
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if (trial.user_attrs.get("worker") or {}).get("host") != host
    ]


class StopRequested(BaseException):
    """Raised by the signal handler: a BaseException, so that no ``except Exception`` on the way swallows it and
    neither Lightning (which turns KeyboardInterrupt into ``sys.exit(1)``) nor Optuna records the trial first."""


class SweepInterrupted(Exception):
    """The sweep was told to stop: its trial is failed, and ``sweep.py`` exits with one line."""


@contextlib.contextmanager
def failing_own_trials_on_stop(study: optuna.Study, worker: dict, sweep_dir: Path):
    """While the body runs, a stop signal (SIGINT, SIGTERM, SIGUSR2) fails this worker's running trial ("interrupted: ...") and raises
    ``SweepInterrupted``. Signal handlers can only be set from the main thread; elsewhere signals act as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signum, signal.default_int_handler)  # a second Ctrl-C aborts the clean-up itself
        raise StopRequested(STOP_SIGNALS[signum])

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    except StopRequested as stop_request:
        reason = f"interrupted: its worker received {stop_request}"
        failed = [
            trial.number
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if trial.user_attrs.get("worker") == worker
            and fail_running_trial(
                study, trial, reason, f"{describe(worker)} was stopped at {datetime.now():%Y-%m-%d %H:%M:%S}."
            )
        ]
        trials = f"trial {', '.join(map(str, failed))} marked failed" if failed else "no trial was running"
        raise SweepInterrupted(
            f"sweep interrupted by {stop_request}: {trials}; sweep directory: {sweep_dir} "
            "(rerun the same command to continue)"
        ) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
