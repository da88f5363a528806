"""What a sweep leaves in its folder: trials.csv, best.yaml, Optuna's plots as PNG, and a printed summary."""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from ftaudit.files import atomic_save_figure, atomic_write_text
from ftaudit.sweep.workers import trial_errors

log = logging.getLogger(__name__)


def trials_csv(trials: list[FrozenTrial], metrics: list[str], params: list[str], errors: dict[int, str]) -> str:
    """One row per trial, whatever its state; a pruned trial's value is its last reported val F1; a failed trial's
    error is in ``errors`` (by trial number)."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["number", "state", *metrics, *params, "epochs", "duration_s", "run_dir", "error"])
    for trial in trials:
        values = trial.values or [None] * len(metrics)
        writer.writerow(
            [
                trial.number,
                trial.state.name,
                *values,
                *(trial.params.get(key) for key in params),
                trial.user_attrs.get("epochs"),
                trial.duration.total_seconds() if trial.duration else None,
                trial.user_attrs.get("run_dir"),
                errors.get(trial.number),
            ]
        )
    return stream.getvalue()


def best_record(study: optuna.Study, metrics: list[str], errors: dict[int, str]) -> dict:
    """The best trial (single objective) or the Pareto front, each with the command that reproduces it; and why
    each failed trial failed."""
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    if TrialState.COMPLETE not in states:
        best = []
    else:  # one best trial even when others tie with it; the whole front when there are several objectives
        best = [study.best_trial] if len(metrics) == 1 else study.best_trials
    return {
        "study": study.study_name,
        "objectives": [
            f"{metric}:{'max' if direction == optuna.study.StudyDirection.MAXIMIZE else 'min'}"
            for metric, direction in zip(metrics, study.directions)
        ],
        "trials": {state.name.lower(): states.count(state) for state in TrialState if states.count(state)},
        "best_trials": [
            {
                "number": trial.number,
                "values": dict(zip(metrics, trial.values)),
                "params": trial.params,
                "run_dir": trial.user_attrs.get("run_dir"),
                "command": trial.user_attrs.get("command"),
            }
            for trial in sorted(best, key=lambda trial: trial.number)
        ],
        "failed_trials": errors,
    }


def write_plots(study: optuna.Study, metrics: list[str], sweep_dir: Path) -> dict[str, str]:
    """Optimisation history and parameter importances of the first objective, the Pareto front when there are
    several. Returns the plots it could not draw (e.g. too few finished trials) and why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    first = (lambda trial: trial.values[0]) if len(metrics) > 1 else None
    makers = {
        "history.png": lambda: plots.plot_optimization_history(study, target=first, target_name=metrics[0]),
        "importances.png": lambda: plots.plot_param_importances(study, target=first, target_name=metrics[0]),
    }
    if len(metrics) > 1:
        makers["pareto_front.png"] = lambda: plots.plot_pareto_front(study, target_names=metrics)
    skipped = {}
    for name, make in makers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = make()
                figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
                figure.tight_layout()  # Optuna's long axis labels stay inside the PNG
            atomic_save_figure(figure, sweep_dir / name)  # workers finishing together never race on one file
            plt.close(figure)
        except Exception as err:  # a plot is a convenience: it never costs the sweep its record
            skipped[name] = f"{type(err).__name__}: {err}"
    return skipped


def summary(record: dict, pruning: str, sweep_dir: Path, skipped_plots: dict[str, str], notes: list[str]) -> str:
    counts = ", ".join(f"{count} {state}" for state, count in record["trials"].items()) or "no trials"
    lines = [f"\nsweep {record['study']} ({', '.join(record['objectives'])}): {counts}", f"pruning: {pruning}"]
    title = "best trial" if len(record["objectives"]) == 1 else "Pareto front"
    for best in record["best_trials"]:
        values = ", ".join(f"{key}={value:.4f}" for key, value in best["values"].items())
        params = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in best["params"].items()
        )
        lines += [f"{title}: trial {best['number']}: {values} ({params})", f"  {best['command']}"]
    if not record["best_trials"]:
        lines.append("no trial completed")
    lines += [f"plot {name} skipped: {reason}" for name, reason in skipped_plots.items()]
    lines += notes
    lines.append(f"sweep directory: {sweep_dir} (best.yaml, trials.csv, plots, trials/<number>/)")
    return "\n".join(lines)


def write_outputs(
    study: optuna.Study, metrics: list[str], params: list[str], pruning: str, sweep_dir: Path, notes: list[str] = ()
) -> dict:
    """Rewritten after every session of the study, from the whole study (all workers' trials); returns best.yaml.
    ``notes`` go at the end of the printed summary."""
    errors = trial_errors(study)
    atomic_write_text(sweep_dir / "trials.csv", trials_csv(study.get_trials(deepcopy=False), metrics, params, errors))
    record = best_record(study, metrics, errors)
    atomic_write_text(sweep_dir / "best.yaml", yaml.safe_dump(record, sort_keys=False, width=float("inf")))
    skipped = write_plots(study, metrics, sweep_dir) if record["best_trials"] else {}
    print(summary(record, pruning, sweep_dir, skipped, list(notes)), flush=True)
    return record
