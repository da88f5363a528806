"""Fine-tuning methods (full, peft adapters, freezing, L2-SP, WiSE-FT), selected by the ``method`` config group."""

from ftaudit.methods.base import FineTuningMethod, build_method

__all__ = ["FineTuningMethod", "build_method"]
