#!/usr/bin/env bash
# shapes.sh - the real model shapes, on demand (not in CI: the files are 100 MB - 1.5 GB each).
#
#   bench/shapes.sh OUTDIR [TYPES]      TYPES default: "Q8_0 Q4_K_M"
#
# For each shape (SmolLM2-135M, Qwen2.5-0.5B, Llama-3.2-1B, Qwen3-0.6B, Gemma-3-1B) and each type
# it makes a random-weight model with `wandler mkmodel` into OUTDIR (with the real tokenizer where
# ../shared/tokenizer has it; Gemma gets a synthetic one of its 262144 tokens), runs it once with
# `wandler run` (16 greedy tokens) and measures it with bench_shape: load time, resident memory
# right after the load (mmap, no copy: far below the file size), prefill and decode speed.
# Prints a markdown table (the one in bench/SHAPES.md). A type the quantizer does not write yet
# is reported as such. Environment: WANDLER_BUILD (default: build next to this script's folder),
# WANDLER_SHARED_DIR, THREADS, TG (decode tokens, default 64), SHAPES (a subset, e.g.
# "smollm2-135m qwen2.5-0.5b"), KEEP=1 to keep the files. A kept file OUTDIR/<shape>-<TYPE>.gguf
# is reused by later runs ("make s" then reads "kept"): the files are made once, with seed 1, and
# shared by every benchmark that wants these shapes. A file is written as OUTDIR/.<shape>-<TYPE>.*
# and renamed when complete, so a reader never sees half a model, and a run that finds another
# maker's temporary waits for the file instead of making it twice.
set -uo pipefail
out=${1:?usage: shapes.sh OUTDIR [TYPES]}
types=${2:-"Q8_0 Q4_K_M"}
here=$(cd "$(dirname "$0")" && pwd)
build=${WANDLER_BUILD:-$here/../build}
shared=${WANDLER_SHARED_DIR:-$here/../../shared}
tg=${TG:-64}
threads=${THREADS:-0}
wandler=$build/wandler
bench=$build/bench_shape
[ -x "$wandler" ] && [ -x "$bench" ] || { echo "build first: $wandler, $bench" >&2; exit 2; }
mkdir -p "$out"

# shape, tokenizer file (or "" for the synthetic one)
shapes=(
  "smollm2-135m ggml-vocab-smollm2.gguf"
  "qwen2.5-0.5b ggml-vocab-qwen2.gguf"
  "llama-3.2-1b ggml-vocab-llama3.gguf"
  "qwen3-0.6b ggml-vocab-qwen2.gguf"
  "gemma-3-1b -"
)

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "| shape | type | params | file MiB | make s | load ms | RSS after load MiB (heap / file pages) | RSS after decode MiB | prefill tok/s | decode tok/s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for entry in "${shapes[@]}"; do
  read -r shape vocab <<< "$entry"
  [ -z "${SHAPES:-}" ] || [[ " $SHAPES " == *" $shape "* ]] || continue
  vocab_opt=()
  [ "$vocab" != "-" ] && [ -f "$shared/tokenizer/$vocab" ] && vocab_opt=(--vocab "$shared/tokenizer/$vocab")
  for t in $types; do
    f="$out/$shape-$t.gguf"
    t0=$(date +%s.%N)
    # another run making the same file (its temporary is .<shape>-<TYPE>.*): wait for it
    while [ "${KEEP:-0}" = 1 ] && [ ! -f "$f" ] && compgen -G "$out/.$shape-$t.*" > /dev/null; do sleep 5; done
    tmp="$out/.$shape-$t.shapes.tmp"
    if [ "${KEEP:-0}" = 1 ] && [ -f "$f" ]; then
      make_s=kept
    elif ! "$wandler" mkmodel -q --shape "$shape" --type "$t" --seed 1 "${vocab_opt[@]}" "$tmp" 2> "$out/err"; then
      echo "| $shape | $t | | | | | not made: $(sed 's/^wandler mkmodel: //; s/ (WANDLER_ERR_[A-Z_]*)//' "$out/err") | | | |"
      rm -f "$tmp"
      continue
    else
      mv "$tmp" "$f"
      make_s=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
    fi
    if ! "$wandler" run "$f" -p "Once upon a time" -n 16 --temp 0 --worker inline --threads "${threads/#0/$(nproc)}" \
         > /dev/null 2> "$out/run.err"; then
      echo "| $shape | $t | | | | | run failed: $(tail -n 1 "$out/run.err") | | | |"
      continue
    fi
    j=$("$bench" "$f" --json --tg "$tg" --threads "$threads") || { echo "| $shape | $t | bench failed |"; continue; }
    python3 - "$shape" "$t" "$make_s" "$j" <<'EOF'
import json, sys
shape, t, make_s, j = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
print(f"| {shape} | {t} | {j['params']/1e6:.0f}M | {j['file_mib']:.0f} | {make_s} | {j['load_ms']:.1f} | "
      f"{j['rss_loaded_mib']:.1f} ({j['anon_loaded_mib']:.1f} / {j['file_loaded_mib']:.1f}) | "
      f"{j['rss_after_decode_mib']:.0f} | {j['prefill_tok_s']:.1f} | {j['decode_tok_s']:.2f} |")
EOF
    [ "${KEEP:-0}" = 1 ] || rm -f "$f"
  done
done
rm -f "$out/err" "$out/run.err"
echo
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $tg decode tokens after a 20-token prompt, threads: ${threads/#0/all}."
echo "$(date -u '+%F %H:%M') UTC, wandler $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo '?'), load average (1, 5, 15 min) $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
