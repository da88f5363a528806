"""Adding a degradation probe is one module and one YAML, as docs/extending.md shows: a throwaway probe, written
outside the package and selected by a probes config on Hydra's search path, runs in a real ``python train.py`` and
its keys reach the record with their split and direction. No list in ftaudit is edited."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from ftaudit.errors import ConfigError
from ftaudit.probes.degradation import build_degradation_probes
from tests.conftest import TINY_SUBSET_RUN, compose_config, run_script

PROBE_MODULE = '''
"""A throwaway probe: the share of the model's weight tensors that fine-tuning changed."""

import torch

from ftaudit.metrics import MetricSpec
from ftaudit.probes.degradation import DegradationProbe


class ChangedTensorsProbe(DegradationProbe):
    base_name = "changed_tensors"
    description = "share of weight tensors that fine-tuning changed at all"

    def metric_specs(self):
        return [MetricSpec(f"degradation/{self.name}/share", None, None)]

    def measure(self, ctx):
        changed = [
            not torch.equal(value.cpu(), ctx.base_state[name])
            for name, value in ctx.model.state_dict().items()
            if name in ctx.base_state
        ]
        return {f"degradation/{self.name}/share": sum(changed) / len(changed) * self.settings.scale}
'''

PROBES_YAML = """
# probes=with_changed_tensors: the default probes and the throwaway one
defaults:
  - default
  - _self_

degradation: [weights, changed_tensors]
degradation_settings:
  changed_tensors:
    _target_: throwaway_probe.ChangedTensorsProbe
    scale: 1.0
"""


@pytest.fixture
def new_probe(tmp_path):
    """The probe's module on PYTHONPATH and its YAML in a config folder on Hydra's search path."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "throwaway_probe.py").write_text(textwrap.dedent(PROBE_MODULE))
    (tmp_path / "conf" / "probes").mkdir(parents=True)
    (tmp_path / "conf" / "probes" / "with_changed_tensors.yaml").write_text(PROBES_YAML)
    return tmp_path


@pytest.mark.slow
def test_a_probe_added_as_one_module_and_one_yaml_reaches_the_record(new_probe):
    result = run_script(
        *(o for o in TINY_SUBSET_RUN if not o.startswith("probes.degradation=")),  # it would win over probes=
        f"hydra.searchpath=[file://{new_probe / 'conf'}]",
        "probes=with_changed_tensors",
        "probes.fairness.enabled=false",
        cwd=new_probe,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(new_probe / "code"), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (new_probe / "outputs" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    declared = json.loads((run_dir / "metrics_info.json").read_text())
    assert 0 < metrics["degradation/changed_tensors/share"] <= 1  # training changed some tensors
    assert declared["degradation/changed_tensors/share"] == {"split": None, "higher_is_better": None}
    assert "degradation/weights/drop" in metrics  # the default probes it kept


def test_a_probe_without_a_class_or_with_a_wrong_one_is_one_config_error():
    with pytest.raises(ConfigError, match=r"unknown probe\(s\) \['nothing'\]"):
        build_degradation_probes(compose_config("model=tiny", "probes.degradation=[nothing]"))
    not_a_probe = ["model=tiny", "probes.degradation=[odd]", "+probes.degradation_settings.odd._target_=pathlib.Path"]
    with pytest.raises(ConfigError, match=r"odd._target_=pathlib.Path is not a DegradationProbe"):
        build_degradation_probes(compose_config(*not_a_probe))
    missing = ["model=tiny", "probes.degradation=[gone]", "+probes.degradation_settings.gone._target_=no_such.Probe"]
    with pytest.raises(ConfigError, match=r"gone._target_=no_such.Probe"):
        build_degradation_probes(compose_config(*missing))
