#!/usr/bin/env bash
# On a machine with one CUDA GPU: which arithmetic trains like fp32, a profile of
# one step, the benchmark (plain and compiled), then the course-scale study
# (3 seeds, both variants), everything written under the folder given.
#   bash bench/gpu.sh OUT_DIR            # GPU_MINUTES=25 by default
#   GPU_MINUTES=9 bash bench/gpu.sh OUT  # less GPU time: stages stop in time
#   SKIP_RUNS="vanilla:0" bash bench/gpu.sh OUT   # study runs already measured
#   STUDY_ONLY=1 bash bench/gpu.sh OUT    # only step 4, in fp32 (or PRECISION=tf32)
# 1. bench/precision_check.py: bf16 and tf32 against fp32, 500 steps, 2 seeds.
#    The rest runs in tf32 if its loss curve stayed inside fp32's spread, else fp32.
# 2. bench/profile_step.py: where a step's time goes (GPU busy time vs wall time).
# 3. factgpt bench, then factgpt bench --compile.
# 4. The study, one (variant, seed) per process, one after the other (side by side
#    they were measured to share the GPU no faster), until the budget ends; each
#    run writes its rows as it goes and `factgpt merge` joins them in OUT_DIR/course.
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
  prec=${PRECISION:-fp32}
  if [ -z "${STUDY_ONLY:-}" ]; then
    echo "== $(date -u +%T) precision: bf16 and tf32 against fp32 (500 steps, seeds 0 1)"
    timeout $(( budget / 8 )) python bench/precision_check.py --device cuda --steps 500 --seeds 0 1 \
      --compare bf16 tf32 --out "$out/bench" || echo "precision check failed or ran out of time"
    prec=$(python -c "import json,sys; d=json.load(open(sys.argv[1])); print('tf32' if d['within_fp32_spread'].get('tf32') else 'fp32')" \
      "$out/bench/precision-"*.json 2>/dev/null || echo fp32)
    echo "== $(date -u +%T) precision for the rest: $prec"

    echo "== $(date -u +%T) profile of one fast step ($prec)"
    timeout 60 python bench/profile_step.py --device cuda --precision "$prec" --out "$out/bench" | head -n 14

    echo "== $(date -u +%T) bench ($prec), then with torch.compile"
    timeout $(( budget / 8 )) $fg bench --device cuda --precision "$prec" --steps 300 --finetune_steps 40 \
      --eval_reference 50 --out "$out/bench" || echo "bench failed or ran out of time"
    timeout $(( budget / 8 )) $fg bench --device cuda --precision "$prec" --compile --steps 300 --finetune_steps 40 \
      --eval_reference 50 --out "$out/bench" || echo "compiled bench failed or ran out of time"
  fi

  echo "== $(date -u +%T) the course study ($prec), one run at a time"
  for s in 0 1 2; do
    for v in vanilla synthesizer; do
      case " ${SKIP_RUNS:-} " in *" $v:$s "*) continue ;; esac
      [ "$(left)" -gt 60 ] || { echo "budget spent: $v seed $s not run"; continue; }
      echo "-- $(date -u +%T) $v seed $s ($(left) s left)"
      timeout $(( $(left) - 30 )) $fg reproduce --profile course --device cuda --precision "$prec" --seeds "$s" \
        --variants "$v" --out "$out/runs/$v-$s" --quiet --yes > "$out/course-$v-$s.log" 2>&1
      grep -E "pretrain|finetune|: [0-9]+/500" "$out/course-$v-$s.log" | tail -n 4
    done
  done

  echo "== $(date -u +%T) merge the runs"
  $fg merge "$out"/runs/*/results.json --out "$out/course" || echo "nothing to merge"

  # Seed 0's checkpoints, to be committed as results/course/seed0/ (each about 13 MB):
  # `factgpt reproduce --profile course --pretrained results/course/seed0` finetunes and
  # evaluates every row from them on a CPU, and `factgpt analyze` analyses them.
  mkdir -p "$out/course-seed0"
  for f in vanilla-0/seed0/vanilla.pretrain vanilla-0/seed0/vanilla.finetune vanilla-0/seed0/vanilla.nopretrain \
           synthesizer-0/seed0/synthesizer.pretrain synthesizer-0/seed0/synthesizer.finetune; do
    [ -f "$out/runs/$f.safetensors" ] && cp "$out/runs/$f.safetensors" "$out/course-seed0/"
  done
  ls -la "$out/course-seed0"
} 2>&1 | tee "$out/gpu.log"
# What comes back: the checkpoints as they are, everything else in one tarball (at most 8 files).
find "$out" -name '*.state' -delete
tar -C "$out" --exclude='*.safetensors' -czf "$out/gpu-results.tar.gz" $(cd "$out" && ls -A | grep -v -e '^course-seed0$' -e '^gpu-results.tar.gz$')
find "$out" -mindepth 1 -maxdepth 1 ! -name course-seed0 ! -name gpu-results.tar.gz -exec rm -rf {} +
echo "left: $(find "$out" -type f | wc -l) files"; du -ah "$out" | sort -h | tail -8
