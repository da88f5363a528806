"""Fine-tune a model and audit the run: ``python train.py model=bert-base data=conll``."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ftaudit.errors import exit_on_user_error
from ftaudit.run import train


@hydra.main(version_base="1.3", config_path="pkg://ftaudit.conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    metrics = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    return metrics["task/val_f1"]


if __name__ == "__main__":
    main()
