"""The package's shape: small modules, short lines, the public names importable from the top, nothing heavy on import.

Lines nbdev writes itself are not ours to wrap: `_modidx.py`, and the first line of each generated `__all__` (nbdev wraps
the list at 120 characters and then puts `__all__ = ` in front of it).
"""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "evotr_lib"
MAX_LINES, MAX_CHARS = 400, 120


def modules() -> dict[str, list[str]]:
    return {p.relative_to(LIB).as_posix(): p.read_text(encoding="utf-8").splitlines()
            for p in sorted(LIB.rglob("*.py")) if p.name != "_modidx.py"}


def test_modules_are_small():
    long = {name: len(lines) for name, lines in modules().items() if len(lines) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_code_lines_are_short():
    bad = [f"{name}:{i} ({len(line)} characters)" for name, lines in modules().items()
           for i, line in enumerate(lines, 1) if len(line) > MAX_CHARS and not line.startswith("__all__ = [")]
    assert not bad, f"lines over {MAX_CHARS} characters: {bad}"


def test_public_names_and_a_light_import():
    probe = ("import sys\n"
             "import evotr_lib, evotr_lib.mmrec, evotr_lib.lm, evotr_lib.assistant, evotr_lib.pdclm\n"
             "heavy = sorted({'torch', 'chromadb', 'transformers', 'sklearn'} & set(sys.modules))\n"
             "from evotr_lib import linear_scan, MMRecConfig, MMRecModel, Router, MemoryManager, Assistant, load_engine\n"
             "print(heavy, MMRecModel.__module__, Assistant.__module__, load_engine.__module__)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["[]", "evotr_lib.mmrec.model", "evotr_lib.assistant.orchestrator",
                                "evotr_lib.assistant.engine"], r.stdout
