"""Tasks whose model is a pretrained encoder under a fresh classification head over the data's labels (NER, sentence
classification): how they load the model to train, the model to audit, and what its card says to load it."""

from __future__ import annotations

from omegaconf import DictConfig

from ftaudit.models.finetuned import FineTunedModel, load_finetuned
from ftaudit.models.loading import load_classifier
from ftaudit.tasks.base import Task
from ftaudit.tasks.data import SplitDataModule


class LabelledTask(Task):
    def load_model(self, model_cfg: DictConfig, data: SplitDataModule, attention: str | None):
        return load_classifier(model_cfg, self.head, data.labels, attention)

    def load_audited(self, model_cfg: DictConfig, base_cfg: DictConfig, data: SplitDataModule) -> FineTunedModel:
        finetuned = load_finetuned(model_cfg, base_cfg, self.head)
        data.adopt_label_order(finetuned.labels, finetuned.source)  # the model is scored in its own label ids
        return finetuned

    def loading_snippet(self, labels: list[str], adapter: bool, base: str | None) -> str:
        head = self.head
        if not adapter:
            return (
                f"```python\nfrom transformers import {head}\n\n"
                f'model = {head}.from_pretrained("path/to/this/folder")\n```'
            )
        return (
            f"```python\nfrom peft import PeftModel\nfrom transformers import {head}\n\nlabels = {list(labels)!r}\n"
            f'base = {head}.from_pretrained("{base}", num_labels=len(labels), id2label=dict(enumerate(labels)),\n'
            f"    label2id={{label: i for i, label in enumerate(labels)}})\n"
            f'model = PeftModel.from_pretrained(base, "path/to/this/folder")\n```'
        )
