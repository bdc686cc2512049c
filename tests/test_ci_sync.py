"""`.ci/check-sync` passes on the project as it is and fails when a notebook and the library disagree."""
import os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
GIT_ID = ["-c", "user.name=ci", "-c", "user.email=ci@localhost"]


def sh(*cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture
def checkout(tmp_path):
    "A git repo holding this checkout's working tree (tracked and untracked-but-not-ignored files), committed."
    files = sh("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout.split("\0")
    dst = tmp_path / "repo"
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    (dst / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", *GIT_ID, "commit", "-qm", "snapshot"]):
        assert sh(*cmd, cwd=dst).returncode == 0
    return dst


def check_sync(repo):
    return sh("bash", ".ci/check-sync", cwd=repo)


def test_in_sync(checkout):
    r = check_sync(checkout)
    assert r.returncode == 0, r.stdout + r.stderr


def test_notebook_changed_without_export_fails(checkout):
    nb = checkout / "nbs" / "00_config.ipynb"
    text = nb.read_text()
    marker = '"def is_offline() -> bool:\\n",'
    assert marker in text
    nb.write_text(text.replace(marker, '"def is_offline_renamed() -> bool:\\n",', 1))
    sh("git", *GIT_ID, "commit", "-qam", "edit notebook only", cwd=checkout)
    r = check_sync(checkout)
    assert r.returncode == 1 and "out of sync" in r.stderr and "evotr_lib/config.py" in r.stderr


def test_library_edited_by_hand_fails(checkout):
    lib = checkout / "evotr_lib" / "mmrec" / "mdi.py"
    lib.write_text(lib.read_text() + "\nHAND_EDIT = 1\n")
    sh("git", *GIT_ID, "commit", "-qam", "edit library only", cwd=checkout)
    r = check_sync(checkout)
    assert r.returncode == 1 and "evotr_lib/mmrec/mdi.py" in r.stderr
