"""Named-entity recognition: CoNLL-style column files, one tag per word, entity-level F1 (seqeval)."""

from __future__ import annotations

from ftaudit.tasks.labelled import LabelledTask
from ftaudit.tasks.ner.data import NERDataModule
from ftaudit.tasks.ner.fairness import NameSubstitutionProbe
from ftaudit.tasks.ner.metrics import conlleval_lines
from ftaudit.tasks.ner.module import NERTagger


class NERTask(LabelledTask):
    name = "ner"
    headline = "f1"
    head = "AutoModelForTokenClassification"
    pipeline_tag = "token-classification"
    formats = {"conll": NERDataModule}
    module_class = NERTagger
    # entity F1 in conlleval mode, its precision and recall, strict IOB2 F1, F1 per type, and word-level calibration
    scores = {"f1": "max", "precision": "max", "recall": "max", "f1_*": "max", "ece": "min"}
    summary = ("f1", "precision", "recall", "f1_strict", "ece")

    def prediction_files(self, data: NERDataModule, module: NERTagger) -> dict[str, str]:
        test = data.splits["test"]
        tokens, gold = [s.tokens for s in test.sentences], [s.tags for s in test.sentences]
        return {"predictions/test.txt": conlleval_lines(tokens, gold, module.test_predictions)}

    def fairness_probe(self, settings, groups, split, names_file, missing=None) -> NameSubstitutionProbe:
        return NameSubstitutionProbe(settings, groups, split, names_file, missing)
