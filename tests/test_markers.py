"""The test tiers of pyproject's markers: ``gpu`` tests skip without a CUDA device (``tests/conftest.py``)."""

import pytest
import torch

from tests.conftest import pytest_collection_modifyitems


class Item:
    def __init__(self, *marks: str):
        self.keywords = dict.fromkeys(marks, True)
        self.added = []

    def add_marker(self, marker):
        self.added.append(marker)


@pytest.mark.parametrize("cuda", [False, True])
def test_gpu_tests_skip_without_a_cuda_device(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    gpu, cpu, slow = Item("gpu"), Item(), Item("slow")
    pytest_collection_modifyitems(None, [gpu, cpu, slow])
    assert [mark.name for mark in gpu.added] == ([] if cuda else ["skip"])
    assert cpu.added == slow.added == []
