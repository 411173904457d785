#!/usr/bin/env bash
# A profile search on this machine's CPU, one training at a time (two torch processes on 2 cores slow
# each other many times over): each line of QUEUE, "PROFILE.json VARIANT SEED PROBE_EVERY", becomes a
# `factgpt curve` in OUT/<profile>-<variant>-s<seed>/ (held-out accuracy and line recall, fp32, dev never
# touched). The queue is read again after every run, so lines can be added while it runs; a line whose
# curve finished is skipped, one cut short is resumed.
#   nohup bash bench/search_cpu.sh configs/search-focused/queue.txt results/search-focused/cpu > search.log 2>&1 &
set -uo pipefail
queue=${1:?usage: bash bench/search_cpu.sh QUEUE OUT}
out=${2:?usage: bash bench/search_cpu.sh QUEUE OUT}
mkdir -p "$out"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
done_or_failed=" "
while :; do
  next=""
  while read -r prof variant seed every; do
    [ -n "${prof:-}" ] && [ "${prof:0:1}" != "#" ] || continue
    dir="$out/$(basename "$prof" .json)-$variant-s$seed"
    case "$done_or_failed" in *" $dir "*) continue ;; esac
    if python -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['pretrain_done'] else 1)" \
        "$dir/curve.json" 2>/dev/null; then continue; fi
    next="$prof $variant $seed $every"; break
  done < "$queue"
  [ -n "$next" ] || { echo "$(date -u +%T) queue done"; break; }
  set -- $next; dir="$out/$(basename "$1" .json)-$2-s$3"
  resume=""; [ -f "$dir/curve.json" ] && resume="--resume"
  echo "$(date -u +%T) start $1 $2 seed $3 $resume"
  python -m factgpt curve --profile "$1" --variant "$2" --seed "$3" --probe_every "$4" --precision fp32 \
    --device cpu --out "$dir" $resume > "$dir.log" 2>&1
  echo "$(date -u +%T) end $1 $2 seed $3: rc $?; $(grep -E '^epoch' "$dir.log" | tail -3 | tr '\n' ' ')"
  done_or_failed="$done_or_failed$dir "
done
