#!/usr/bin/env bash
# vs_llamacpp.sh - wandler against llama.cpp, side by side on the same GGUF files.
#
#   bench/vs_llamacpp.sh [MODEL.gguf ...]
#
# For every model it alternates llama.cpp's llama-bench and `wandler bench` (ALT times each,
# one repetition per run, so both see the same machine state in turn), takes the median of
# each tool's runs and prints a markdown table of tokens/s and ratios (wandler / llama.cpp;
# > 1 means wandler is faster). The machine this was written on is shared and noisy, which is
# why the runs alternate and only medians are compared.
#
# llama.cpp is not part of this project: build it yourself outside the tree (CPU, Release)
# and point LLAMA_BENCH at its llama-bench. Environment:
#   LLAMA_BENCH  llama-bench binary (default /work/oracle/llama.cpp/build/bin/llama-bench)
#   WANDLER      wandler binary (default: build/wandler next to this folder)
#   MODELS_DIR   where the default models are (default /work/models-gen): <shape>-<TYPE>.gguf
#   ALT          alternations (default 5)        PP, TG   tokens (default 512, 128)
#   THREADS      threads for both (default: nproc)
#   LOG          raw per-run figures are appended here (default /tmp/vs_llamacpp.log)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
llama_bench=${LLAMA_BENCH:-/work/oracle/llama.cpp/build/bin/llama-bench}
wandler=${WANDLER:-$here/../build/wandler}
models_dir=${MODELS_DIR:-/work/models-gen}
alt=${ALT:-5}
pp=${PP:-512}
tg=${TG:-128}
threads=${THREADS:-$(nproc)}
log=${LOG:-/tmp/vs_llamacpp.log}
[ -x "$llama_bench" ] || { echo "no llama-bench at $llama_bench (set LLAMA_BENCH)" >&2; exit 2; }
[ -x "$wandler" ] || { echo "no wandler at $wandler (set WANDLER)" >&2; exit 2; }

if [ $# -gt 0 ]; then
  models=("$@")
else
  models=()
  for m in smollm2-135m-F16 smollm2-135m-Q8_0 smollm2-135m-Q4_0 smollm2-135m-Q4_K_M \
           qwen2.5-0.5b-Q8_0 qwen2.5-0.5b-Q4_0 qwen2.5-0.5b-Q4_K_M \
           llama-3.2-1b-Q8_0 llama-3.2-1b-Q4_0 llama-3.2-1b-Q4_K_M; do
    [ -f "$models_dir/$m.gguf" ] && models+=("$models_dir/$m.gguf")
  done
fi

# one llama-bench run: prints "pp tg" tokens/s
run_llama() {
  "$llama_bench" -m "$1" -p "$pp" -n "$tg" -r 1 -t "$threads" -o jsonl 2>/dev/null | python3 -c '
import json, sys
pp = tg = 0.0
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    j = json.loads(line)
    if j.get("n_prompt", 0) > 0 and j.get("n_gen", 0) == 0:
        pp = j["avg_ts"]
    elif j.get("n_gen", 0) > 0 and j.get("n_prompt", 0) == 0:
        tg = j["avg_ts"]
print(f"{pp:.3f} {tg:.3f}")'
}

# one wandler bench run: prints "pp tg" tokens/s
run_wandler() {
  "$wandler" bench "$1" --pp "$pp" --tg "$tg" -r 1 -t "$threads" --no-bw --json 2>/dev/null | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
print("%.3f %.3f" % (j["pp_tokens_per_s"], j["tg_tokens_per_s"]))'
}

median() { python3 -c 'import statistics, sys; v = [float(x) for x in sys.argv[1:] if float(x) > 0]; print(f"{statistics.median(v):.2f}" if v else "nan")' "$@"; }
ratio() { python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f"{a / b:.2f}" if b > 0 else "nan")' "$1" "$2"; }

echo "# $(date -u +%FT%TZ) pp$pp tg$tg threads $threads alternations $alt; wandler $("$wandler" --version 2>/dev/null | head -n 1)" >> "$log"
echo "| model | MiB | llama.cpp pp$pp | wandler pp$pp | ratio | llama.cpp tg$tg | wandler tg$tg | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in "${models[@]}"; do
  lpp=(); ltg=(); wpp=(); wtg=()
  for ((i = 0; i < alt; i++)); do
    # alternate which tool goes first
    if ((i % 2 == 0)); then
      read -r a b < <(run_llama "$m"); read -r c d < <(run_wandler "$m")
    else
      read -r c d < <(run_wandler "$m"); read -r a b < <(run_llama "$m")
    fi
    lpp+=("${a:-0}"); ltg+=("${b:-0}"); wpp+=("${c:-0}"); wtg+=("${d:-0}")
    echo "$(basename "$m") run $i: llama.cpp pp ${a:-?} tg ${b:-?} | wandler pp ${c:-?} tg ${d:-?}" >> "$log"
  done
  mlpp=$(median "${lpp[@]}"); mltg=$(median "${ltg[@]}"); mwpp=$(median "${wpp[@]}"); mwtg=$(median "${wtg[@]}")
  mib=$(( $(stat -c %s "$m") / 1048576 ))
  echo "| $(basename "$m" .gguf) | $mib | $mlpp | $mwpp | $(ratio "$mwpp" "$mlpp") | $mltg | $mwtg | $(ratio "$mwtg" "$mltg") |"
done
echo
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; medians of $alt alternations, one repetition each."
