"""Search the training config with Optuna: ``python sweep.py model=minilm sweep.n_trials=20`` (README: Sweeps)."""

from ftaudit.cli import sweep_cli

if __name__ == "__main__":
    sweep_cli()
