"""DDP on CPU: two gloo processes under torchrun train exactly like one process with the whole batch."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "ddp_worker.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]


def test_ddp_matches_single_process(tmp_path):
    run(sys.executable, str(WORKER), str(tmp_path / "single"))
    run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(tmp_path / "ddp"))
    single, ddp = (json.loads((tmp_path / k / "result.json").read_text()) for k in ("single", "ddp"))
    assert (single["world_size"], ddp["world_size"]) == (1, 2)
    assert len(single["losses"]) == len(ddp["losses"]) == 8
    for a, b in zip(single["losses"], ddp["losses"]): assert abs(a - b) < 1e-5, (single["losses"], ddp["losses"])
    assert single["losses"][-1] < single["losses"][0]
