"""Sentence classification: one label per sentence or sentence pair (e.g. Financial PhraseBank sentiment), macro F1."""

from __future__ import annotations

from ftaudit.tasks.classification.data import PhraseBankDataModule, SentenceDataModule, TextFilesDataModule
from ftaudit.tasks.classification.fairness import AttributionProbe
from ftaudit.tasks.classification.metrics import predictions_tsv
from ftaudit.tasks.classification.module import SentenceClassifier
from ftaudit.tasks.labelled import LabelledTask


class ClassificationTask(LabelledTask):
    name = "classification"
    headline = "f1_macro"
    head = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    formats = {"phrasebank": PhraseBankDataModule, "text_csv": TextFilesDataModule}
    module_class = SentenceClassifier
    # accuracy, macro F1 over the labels, F1 per label, Matthews correlation, and calibration of the predicted label
    scores = {"accuracy": "max", "f1_macro": "max", "f1_*": "max", "mcc": "max", "ece": "min"}
    summary = ("f1_macro", "accuracy", "ece")

    def prediction_files(self, data: SentenceDataModule, module: SentenceClassifier) -> dict[str, str]:
        return {
            "predictions/test.tsv": predictions_tsv(data.splits["test"].examples, module.test_predictions, data.labels)
        }

    def fairness_probe(self, settings, groups, split, names_file, missing=None) -> AttributionProbe:
        return AttributionProbe(settings, groups, split, names_file, missing)
