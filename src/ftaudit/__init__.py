"""ftaudit: what did this fine-tuning run gain, and what did it cost?

``from ftaudit import compose, train, audit``: compose a config from command-line overrides, fine-tune with it, or
audit a fine-tuned model against its base (``ftaudit.api``).
"""

__version__ = "0.1.0"
__all__ = ["audit", "compose", "train"]


def __getattr__(name: str):
    # Imported on first use: ``import ftaudit.errors`` and the command-line checks stay light (no torch).
    if name in __all__:
        from ftaudit import api

        return getattr(api, name)
    raise AttributeError(f"module 'ftaudit' has no attribute {name!r}")
