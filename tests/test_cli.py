"""The installed `evotr` console script and the package imports, run as a user would: in a fresh process."""
import json, os, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*cmd, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **kw.pop("env", {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, **kw)


def test_core_modules_import():
    r = run(sys.executable, "-c", "import evotr_lib.memory_state, evotr_lib.mdi, evotr_lib.hds")
    assert r.returncode == 0, r.stderr


def test_evotr_info_runs(tmp_path):
    r = run(str(BIN / "evotr"), "info", env={"EVOTR_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    for word in ("evotr", "torch", "device", "components:", "memory_state", "mdi", "hds", "optional backends:"):
        assert word in r.stdout
    assert str(tmp_path / "home") in r.stdout
    assert "unavailable" not in r.stdout


def test_evotr_info_json():
    r = run(str(BIN / "evotr"), "info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["device"] in ("cpu", "cuda", "mps") or d["device"].startswith("cuda")
    assert {"memory_state", "mdi", "hds"} <= set(d["components"])


def test_evotr_rejects_bad_usage():
    r = run(str(BIN / "evotr"), "no-such-command")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert run(str(BIN / "evotr")).returncode == 2
