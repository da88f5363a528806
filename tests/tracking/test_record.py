import subprocess
from pathlib import Path

from ftaudit.tracking.record import git_commit

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def commit_all(repo: Path) -> str:
    subprocess.run([*GIT, "-C", str(repo), "init", "-q"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "c"], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_a_checkout_records_its_commit_and_dirty_tracked_files(tmp_path):
    (tmp_path / "pyproject.toml").write_text("x\n")
    head = commit_all(tmp_path)
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("y\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "pyproject.toml").write_text("changed\n")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_no_commit_is_claimed_for_code_that_is_not_the_repository_around_it(tmp_path):
    """A venv or an unpacked source inside some repository: that repository's HEAD is not the code that ran."""
    (tmp_path / "unpacked").mkdir()
    (tmp_path / "unpacked" / "pyproject.toml").write_text("x\n")
    commit_all(tmp_path)
    assert git_commit(tmp_path / "unpacked") is None
    assert git_commit(None) is None  # an installed package
