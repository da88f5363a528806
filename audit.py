"""Audit a fine-tuned model against its base, without training: ``python audit.py model.name_or_path=<model>
[base.name_or_path=<base>]`` (README: Audits)."""

from ftaudit.cli import audit_cli

if __name__ == "__main__":
    audit_cli()
