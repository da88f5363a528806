"""The fine-tuned model kept in the run directory (``record.save_model``), in Hugging Face's format.

``model/`` holds what ``from_pretrained`` reads: a transformers model (``config.json`` with the labels,
``model.safetensors``) or, for peft methods, the adapter (``adapter_config.json``, ``adapter_model.safetensors``),
with the tokenizer and the model card (``README.md``). ``merged_model/`` holds a peft run's adapter merged into its
base, on request (``record.save_merged``). Each folder is written like the rest of the record: in a temporary folder
beside its place, renamed into it once complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ftaudit.errors import FIXABLE_WRITE_ERRORS, write_error
from ftaudit.files import UMASK


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def save_pretrained(folder: Path, model, tokenizer, card: str) -> int:
    """``model`` (a peft model saves its adapter), its tokenizer and its model card in ``folder``; returns the bytes
    written. A leftover of this unfinished run (killed while writing its record) is replaced."""
    try:
        temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    except OSError as err:
        raise write_error(err, folder) if err.errno in FIXABLE_WRITE_ERRORS else err from None
    try:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        (temporary / "README.md").write_text(card, encoding="utf-8")  # over the template card peft writes
        os.chmod(temporary, 0o777 & ~UMASK)  # mkdtemp (and safetensors) write private; records are meant to be shared
        for path in temporary.iterdir():
            os.chmod(path, 0o666 & ~UMASK)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temporary, folder)
    except BaseException as err:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in FIXABLE_WRITE_ERRORS:
            raise write_error(err, folder) from None
        raise
    return folder_bytes(folder)
