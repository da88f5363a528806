"""Building the configured loggers: a logger whose package is missing stops the run with one line."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.tracking.loggers import build_loggers


class NeedsMissingPackage:
    """Stands for a logger whose optional extra is not installed."""

    def __init__(self):
        import ftaudit_test_package_that_is_not_installed  # noqa: F401


def test_missing_logger_package_is_one_config_error_naming_the_extra():
    cfg = OmegaConf.create({"mlflow": {"_target_": f"{__name__}.NeedsMissingPackage"}})
    with pytest.raises(ConfigError) as raised:
        build_loggers(cfg)
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        "logger=mlflow cannot start: No module named 'ftaudit_test_package_that_is_not_installed'; "
        "install it with pip install -e '.[mlflow]'"
    )


def test_loggers_are_built_in_config_order(tmp_path):
    cfg = OmegaConf.create(
        {
            name: {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": str(tmp_path / name)}
            for name in ("first", "second")
        }
    )
    assert [logger.save_dir for logger in build_loggers(cfg)] == [str(tmp_path / "first"), str(tmp_path / "second")]
