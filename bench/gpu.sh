#!/usr/bin/env bash
# On a machine with one CUDA GPU: the benchmark, the bf16-against-fp32 check,
# then the course-scale study (3 seeds, both variants), everything written
# under the folder given.
#   bash bench/gpu.sh OUT_DIR            # GPU_MINUTES=25 by default
#   GPU_MINUTES=8 bash bench/gpu.sh OUT  # a shorter lease: stages stop in time
# The benchmark runs alone so that its timings are clean; afterwards the
# seeds run as one process each, side by side (a model this small leaves an
# H100 mostly idle between kernel launches), and `factgpt merge` joins them
# into OUT_DIR/course. A stage cut short by the budget keeps the rows it
# finished (results.json then says "partial": true).
# Commit OUT_DIR's contents under results/ saying which machine produced them.
set -uo pipefail
out=${1:?usage: bash bench/gpu.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
budget=$(( ${GPU_MINUTES:-25} * 60 ))
left() { echo $(( budget - SECONDS )); }
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')" || exit 1
# The GPU image may have no network: use the tree itself (bench/*.py import factgpt too).
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fg="python -m factgpt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>/dev/null || true
{
  echo "== bench (alone on the GPU)"
  timeout $(( budget * 3 / 10 )) $fg bench --device cuda --steps 300 --finetune_steps 40 --eval_reference 50 \
    --out "$out/bench" || echo "bench failed or ran out of time"

  echo "== bf16 against fp32 (500 steps) and the course study, one process per seed, side by side"
  stop=$(( $(left) - 45 ))
  timeout "$stop" python bench/precision_check.py --device cuda --steps 500 --seeds 0 1 --out "$out/bench" \
    > "$out/precision.log" 2>&1 &
  for s in 0 1 2; do
    timeout "$stop" $fg reproduce --profile course --device cuda --seeds "$s" --variants vanilla synthesizer \
      --out "$out/seed-runs/$s" --quiet --yes > "$out/course-seed$s.log" 2>&1 &
  done
  wait
  tail -n 5 "$out/precision.log"
  for s in 0 1 2; do echo "-- seed $s"; cat "$out/course-seed$s.log"; done

  echo "== merge the seeds"
  $fg merge "$out"/seed-runs/*/course/results.json --out "$out/course" || echo "nothing to merge"
} 2>&1 | tee "$out/gpu.log"
