"""What the benchmark scripts share: the machine's name, a file-name slug for it, and the results writer.

Every results file names the machine that produced it; ratios are only compared within one file (one run).
"""
import json, os, platform, re
from pathlib import Path

from evotr_lib.config import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def cpu_name() -> str:
    "The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def machine(device=None, model: bool = False) -> str:
    "The machine in words: the GPU's name on CUDA, else 'CPU <arch>, <n> cores' (`model`: the CPU's model name too)."
    if device is not None and getattr(device, "type", device) == "cuda":
        import torch
        return torch.cuda.get_device_name()
    cpu = f"{cpu_name()}, {platform.machine()}" if model else platform.machine()
    return f"CPU {cpu}, {os.cpu_count()} cores"


def machine_slug(device=None) -> str:
    "The machine for a file name: 'cpu_x86_64_2_cores', or the GPU's name ('nvidia_h100_80gb_hbm3')."
    return re.sub(r"[^a-z0-9]+", "_", machine(device).lower()).strip("_")


def write_results(stem: str, markdown: str | list[str], rows=None, out: Path = RESULTS) -> Path:
    "Write `out/<stem>.md` (and `out/<stem>.json` with `rows`), each replaced in one step; returns the markdown's path."
    text = markdown if isinstance(markdown, str) else "\n".join(markdown)
    path = atomic_write_text(Path(out) / f"{stem}.md", text.rstrip("\n") + "\n")
    if rows is not None: atomic_write_text(Path(out) / f"{stem}.json", json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    return path
