from pathlib import Path

from ftaudit import paths
from ftaudit.paths import checkout_root


def test_this_test_runs_from_the_checkout():
    assert paths.CHECKOUT == Path(__file__).resolve().parents[1]
    assert paths.DATA_ROOT == paths.CHECKOUT


def test_an_installed_copy_has_no_checkout_even_inside_one(tmp_path):
    (tmp_path / "pyproject.toml").write_text("x\n")
    source = tmp_path / "src" / "ftaudit" / "paths.py"
    installed = tmp_path / ".venv" / "lib" / "python3.12" / "site-packages" / "ftaudit" / "paths.py"
    flat = tmp_path / "ftaudit" / "paths.py"  # <root>/ftaudit: not the src layout this project has
    for module in (source, installed, flat):
        module.parent.mkdir(parents=True)
        module.write_text("")
    assert checkout_root(source) == tmp_path
    assert checkout_root(installed) is None
    assert checkout_root(flat) is None
    (tmp_path / "pyproject.toml").unlink()
    assert checkout_root(source) is None
