#!/usr/bin/env bash
# The small-model profile search on one CUDA GPU: every candidate of configs/search-small/ as a
# `factgpt curve` (held-out accuracy and line recall every 10 epochs, fp32, dev never touched),
# several processes side by side, until the time given runs out. Each curve.json is rewritten after
# every probe, so a candidate cut short keeps what it measured; everything is packed into one tarball.
#   bash bench/search_small_gpu.sh OUT_DIR [MINUTES] [PARALLEL]
#   ROUND=long PROBE_EVERY=20 bash bench/search_small_gpu.sh OUT_DIR 6 8   # round 2: candidates-long.txt
set -uo pipefail
out=${1:?usage: bash bench/search_small_gpu.sh OUT_DIR [MINUTES] [PARALLEL]}
minutes=${2:-8}
DEVICE=${DEVICE:-cuda}
parallel=${3:-6}
mkdir -p "$out/search"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
deadline=$(( $(date +%s) + ${BUDGET_S:-$(( minutes * 60 ))} - 20 ))
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/search/gpu.csv" 2>/dev/null || true
git rev-parse HEAD > "$out/search/commit.txt" 2>/dev/null || true
# The queue: every candidate's vanilla seed 0, the synthesizer of the main sizes, then seed 1.
if [ "${ROUND:-}" = long ]; then
  { while read -r c; do echo "$c vanilla 0"; done < configs/search-small/candidates-long.txt
    echo "l2d128_lr0.003_b64_e200 synthesizer 0"; } > "$out/search/queue.txt"
else {
  while read -r c; do echo "$c vanilla 0"; done < configs/search-small/candidates.txt
  for c in l2d128_lr0.006_b64_e60 l2d128_lr0.01_b64_e60 l4d128_lr0.006_b64_e30 l4d128_lr0.003_b64_e30 \
           l2d128_lr0.006_b64_e90 l4d256_lr0.002_b64_e40; do echo "$c synthesizer 0"; done
  while read -r c; do echo "$c vanilla 1"; done < configs/search-small/candidates.txt
} > "$out/search/queue.txt"; fi
one() {
  local c=$1 v=$2 s=$3 left=$(( deadline - $(date +%s) ))
  [ "$left" -gt 30 ] || { echo "skipped $c $v $s (time)"; return; }
  local t0=$(date +%s)
  timeout "$left" python -m factgpt curve --profile "configs/search-small/$c.json" --variant "$v" --seed "$s" \
    --probe_every "${PROBE_EVERY:-10}" --device "${DEVICE:-cuda}" --precision fp32 --quiet --out "$out/search/$c-$v-s$s" \
    > "$out/search/$c-$v-s$s.log" 2>&1
  local rc=$?
  echo "$(date -u +%T) $c $v seed $s: rc $rc in $(( $(date +%s) - t0 )) s; $(python -c "import json,sys; d=json.load(open(sys.argv[1])); print([(p['epoch'], p['heldout_correct']) for p in d['probes']])" "$out/search/$c-$v-s$s/curve.json" 2>/dev/null)"
}
export -f one; export out deadline DEVICE PROBE_EVERY
xargs -P "$parallel" -L 1 bash -c 'one "$@"' _ < "$out/search/queue.txt" 2>&1 | tee "$out/search/run.log"
rm -f "$out"/search/*/pretrain.safetensors* 
tar -C "$out" -czf "$out/search.tar.gz" search
echo "packed $(tar -tzf "$out/search.tar.gz" | wc -l) files"
