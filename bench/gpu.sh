#!/usr/bin/env bash
# Every check that needs a GPU, in one run (for a session with a lent GPU machine):
# the notebooks' `#| cuda` and `#| slow` cells for the MM-Rec modules, then the GPU benchmarks,
# whose results land in bench/results/ (copied to $OUT when that is set, so they come back).
# The GPU image has torch, triton, numpy, matplotlib, pytest and safetensors; the rest (fastcore, nbdev,
# execnb, ipykernel, accelerated-scan) travels as wheels in .whl/ (see bench/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
status=0
case "${1:-checks}" in
  checks)
    python3 -m pytest -q -p no:cacheprovider --nb-flags "cuda slow" nbs/mmrec/13_scan.ipynb nbs/mmrec/14_layer.ipynb nbs/mmrec/15_model.ipynb || status=1
    python3 bench/scan.py || status=1
    python3 bench/model.py || status=1 ;;
  mqar)   # `bash bench/gpu.sh mqar`: MQAR at the sizes a CPU cannot train (#18), the GPT, the design's chunk-mean memory
          # and the conv+delta variant, the Zoology regime, width 128, vocabulary 8192. The runs resume from runs/mqar:
          # carry it (and give it back under $OUT) when a call is cut off by its time limit.
    python3 bench/compare.py --task mqar --regime zoology --settings "${MQAR_SETTINGS:-256x16,512x64}" --variants chunk-mean,conv+delta \
      --lrs 1e-3 --steps "${MQAR_STEPS:-4000}" --jobs 3 --work runs/mqar || status=1
    [ -n "${OUT:-}" ] && cp bench/results/mqar.json bench/results/compare_mqar_*.png "$OUT"/ 2>/dev/null ;;
  *) echo "usage: bench/gpu.sh [checks|mqar]"; exit 2 ;;
esac
[ -n "${OUT:-}" ] && cp bench/results/*.md "$OUT"/ 2>/dev/null
exit $status
