#!/usr/bin/env bash
# On a machine with one CUDA GPU: the benchmark, then the course-scale study
# (3 seeds, both variants), everything written under the folder given.
#   bash bench/gpu.sh OUT_DIR
# Budget: about 25 minutes on one H100. Commit OUT_DIR's contents under
# results/ (bench/ and course/) saying which machine produced them.
set -euo pipefail
out=${1:?usage: bash bench/gpu.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
pip install --quiet --no-deps -e . 2>/dev/null || pip install --quiet --no-deps --no-build-isolation -e .
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" || true
{
  echo "== bench"
  factgpt bench --device cuda --steps 300 --finetune_steps 40 --eval_reference 50 --out "$out/bench"
  echo "== bf16 against fp32, 500 steps of course pretraining"
  python bench/precision_check.py --device cuda --steps 500 --seeds 0 1 --out "$out/bench" || echo "precision check failed"
  echo "== course study"
  factgpt reproduce --profile course --device cuda --seeds 0 1 2 --variants vanilla synthesizer --out "$out" --quiet --yes
} 2>&1 | tee "$out/gpu.log"
