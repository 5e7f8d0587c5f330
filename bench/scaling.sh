#!/usr/bin/env bash
# scaling.sh - how prefill (and decode) speed grows with threads: alternates `wandler bench` with
# 1 and N threads on one model, ALT times, and prints the medians and their ratio. It also
# prints the CPU time each run used per token (user + system), which on a shared machine says
# more than the wall clock: if N threads burn no more CPU per token than one, the pool adds no
# overhead and the speed-up is whatever share of the cores the machine gives us.
#
#   bench/scaling.sh MODEL [N]        environment: WANDLER, ALT (default 5), PP (256), TG (32)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wandler=${WANDLER:-$here/../build/wandler}
model=${1:?usage: scaling.sh MODEL [THREADS]}
nt=${2:-$(nproc)}
alt=${ALT:-5}
pp=${PP:-256}
tg=${TG:-32}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

one() { # threads -> "pp tg cpu_s"
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$wandler" bench "$model" --pp "$pp" --tg "$tg" -r 1 -t "$1" --no-bw --json > "$tmp/j" 2>/dev/null
  python3 - "$tmp/j" "$tmp/time" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split()[-2:])
print("%.3f %.3f %.3f" % (j["pp_tokens_per_s"], j["tg_tokens_per_s"], u + s))
PY
}
declare -a p1 t1 c1 pn tn cn
for ((i = 0; i < alt; i++)); do
  read -r a b c < <(one 1); p1+=("$a"); t1+=("$b"); c1+=("$c")
  read -r a b c < <(one "$nt"); pn+=("$a"); tn+=("$b"); cn+=("$c")
done
python3 - "$pp" "$tg" "$nt" "${p1[*]}" "${t1[*]}" "${c1[*]}" "${pn[*]}" "${tn[*]}" "${cn[*]}" <<'PY'
import statistics as st, sys
pp, tg, nt = sys.argv[1:4]
p1, t1, c1, pn, tn, cn = ([float(x) for x in a.split()] for a in sys.argv[4:10])
m = st.median
print(f"| threads | pp{pp} tok/s | tg{tg} tok/s | CPU s per run |")
print("|---|---:|---:|---:|")
print(f"| 1 | {m(p1):.2f} | {m(t1):.2f} | {m(c1):.2f} |")
print(f"| {nt} | {m(pn):.2f} | {m(tn):.2f} | {m(cn):.2f} |")
print(f"| ratio | {m(pn)/m(p1):.2f}x | {m(tn)/m(t1):.2f}x | {m(cn)/m(c1):.2f}x |")
print(f"per-alternation prefill ratios: {' '.join('%.2f' % (b / a) for a, b in zip(p1, pn))}")
PY
