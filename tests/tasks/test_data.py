"""What every task's data shares: the length-grouped sampler's epochs, and re-numbering labels for a model."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ftaudit.errors import DataError
from ftaudit.tasks.data import LengthGroupedBatchSampler, SplitDataModule


def test_an_epoch_set_before_the_first_batch_gives_that_epochs_order():
    lengths = np.random.default_rng(0).integers(3, 80, size=300)
    passes = LengthGroupedBatchSampler(lengths, 16, seed=1)
    first, second = list(passes), list(passes)
    resumed = LengthGroupedBatchSampler(lengths, 16, seed=1)
    batches = iter(resumed)  # Lightning creates the iterator before it says which epoch it is
    resumed.set_epoch(1)
    assert list(batches) == second != first


def test_labels_are_renumbered_in_the_models_order_or_refused():
    data = SplitDataModule(SimpleNamespace(name="toy"), None, 0)
    data.labels = ["O", "B-PER", "I-PER"]
    data.splits = {
        "test": SimpleNamespace(label_pad=-100, labels=[torch.tensor([-100, 0, 1, 2, -100]), torch.tensor(2)])
    }
    data.adopt_label_order(["I-PER", "O", "B-PER"], "model-x")
    assert data.labels == ["I-PER", "O", "B-PER"]
    assert [ids.tolist() for ids in data.splits["test"].labels] == [[-100, 1, 2, 0, -100], 0]
    with pytest.raises(DataError, match=r"labels of model-x do not match data=toy: .*only in the model: \['B-LOC'\]"):
        data.adopt_label_order(["I-PER", "O", "B-LOC"], "model-x")


@pytest.mark.parametrize("examples", [5, 13, 40])
def test_evaluation_batches_are_shared_out_evenly_across_processes(examples):
    """Under DDP each process evaluates its share of the batches, all processes the same number of them (a forward is
    a collective step there); together every example once, the repeated batch aside."""
    split = SimpleNamespace(
        input_ids=[torch.ones(n, dtype=torch.long) for n in range(1, examples + 1)],
        lengths=np.arange(1, examples + 1),
        extra_inputs={},
        label_pad=-100,
        labels=[torch.tensor(0)] * examples,
    )
    whole = SplitDataModule(SimpleNamespace(eval_batch_size=4), SimpleNamespace(pad_token_id=0), 0)
    whole.splits = {"test": split}
    all_batches = [batch["example_index"].tolist() for batch in whole.eval_dataloader("test", shard=True)]
    shares = []
    for rank in range(3):
        data = SplitDataModule(SimpleNamespace(eval_batch_size=4), SimpleNamespace(pad_token_id=0), 0)
        data.splits, data.trainer = {"test": split}, SimpleNamespace(world_size=3, global_rank=rank)
        shares.append([batch["example_index"].tolist() for batch in data.test_dataloader()])
    assert len({len(share) for share in shares}) == 1
    distinct = {tuple(batch) for share in shares for batch in share}
    assert sorted(distinct) == sorted(map(tuple, all_batches))
