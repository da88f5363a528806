"""Fine-tune a model and audit the run: ``python train.py model=bert-base data=conll`` (README: Quickstart)."""

from ftaudit.cli import train_cli

if __name__ == "__main__":
    train_cli()
