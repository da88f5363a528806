"""What a run cost: time, throughput, memory, FLOPs, energy."""

from ftaudit.resources.meter import ResourceMeter

__all__ = ["ResourceMeter"]
