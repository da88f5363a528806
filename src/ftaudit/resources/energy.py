"""Energy and CO2 of a run from codecarbon's offline tracker, with the way it got them."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# codecarbon's words for its CPU modes -> whether the figure is measured or estimated.
MEASURED_CPU_MODES = ("Rapl", "Powermetrics", "Power Gadget", "Windows Emi")


class EnergyTracker:
    """Wraps ``OfflineEmissionsTracker``: no network, no files, no log lines below errors.

    It tracks this process ("process" mode), not the whole machine, so other jobs on a shared
    machine are not billed to the run. Without a country the world-average carbon intensity is used.
    """

    def __init__(self, country_iso_code: str | None = None):
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        from codecarbon import OfflineEmissionsTracker

        self.tracker = OfflineEmissionsTracker(
            country_iso_code=country_iso_code,
            log_level="error",
            save_to_file=False,
            tracking_mode="process",
            allow_multiple_runs=True,
            measure_power_secs=15,
        )
        self.tracker.start()
        self.country = country_iso_code or "world average"

    def so_far(self) -> dict[str, float]:
        """Energy and CO2 until now, the tracker running on (what a resumed run adds its own to)."""
        self.tracker.flush()  # measures up to now
        data = self.tracker._prepare_emissions_data()  # codecarbon has no public getter of the running totals
        return {"resource/energy_kwh": float(data.energy_consumed), "resource/co2_kg": float(data.emissions)}

    def stop(self) -> tuple[dict[str, float], str]:
        """Flat metrics, and one line saying how they were obtained (for ``env.json``)."""
        self.tracker.stop()
        data = self.tracker.final_emissions_data
        hardware = self.tracker._conf.get("hardware", [])  # codecarbon's own description of each meter it used
        cpu_measured = any(mode in item for item in hardware if item.startswith("CPU") for mode in MEASURED_CPU_MODES)
        method = (
            f"codecarbon {data.codecarbon_version} offline, {data.tracking_mode} mode, carbon intensity of "
            f"{self.country}; meters: {', '.join(hardware)} (CPU {'measured' if cpu_measured else 'estimated from TDP x load'}"
            f"{', GPU measured by NVML' if any(item.startswith('GPU') for item in hardware) else ''}, RAM estimated)"
        )
        metrics = {
            "resource/energy_kwh": float(data.energy_consumed),
            "resource/co2_kg": float(data.emissions),
            "resource/energy_is_estimate": 0.0 if cpu_measured else 1.0,
        }
        return metrics, method
