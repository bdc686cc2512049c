"""Pytest runs the notebooks: each notebook under `nbs/` (its subfolders included) is one test item, executed with
nbdev's runner.

Cells flagged with a `tst_flags` directive (`#| cuda`, `#| slow`) are skipped unless named in
`--nb-flags` (e.g. `pytest --nb-flags "slow"`) or `$EVOTR_TEST_FLAGS`.
"""
import os, shlex
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import torch  # noqa: E402
if not torch.cuda.is_available():  # Triton kernels run in Triton's interpreter; it must be chosen before triton is imported
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_addoption(parser):
    parser.addoption("--nb-flags", default=os.environ.get("EVOTR_TEST_FLAGS", ""),
                     help="space-separated tst_flags whose notebook cells should run (e.g. 'slow cuda')")


def pytest_collect_file(parent, file_path):
    if file_path.suffix != ".ipynb" or file_path.name.startswith("_"): return None
    parts = file_path.relative_to(parent.config.rootpath).parts
    if parts[0] == "nbs" and ".ipynb_checkpoints" not in parts:
        return NotebookFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self):
        yield NotebookItem.from_parent(self, name=self.path.relative_to(self.config.rootpath / "nbs").with_suffix("").as_posix())


class NotebookItem(pytest.Item):
    def runtest(self):
        from nbdev.config import get_config
        from nbdev.test import test_nb
        cfg = get_config(self.path.parent)
        skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
        force = shlex.split(self.config.getoption("--nb-flags"))
        ok, secs = test_nb(self.path, skip_flags=[f for f in skip if f not in force], force_flags=force,
                           basepath=cfg.config_path, showerr=True)
        if not ok: raise NotebookFailed(self.path.name)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookFailed):
            return f"{excinfo.value} failed: the failing cell's traceback is in the captured stderr below."
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"notebook {self.path.name}"


class NotebookFailed(Exception):
    pass
