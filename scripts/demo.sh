#!/usr/bin/env bash
# demo.sh [wandler run options] - installs what the build needs, builds wandler (Release) and
# streams a story from the bundled model. Extra arguments go to `wandler run`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" build
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DWANDLER_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build/release" -j "$(nproc)" --target wandler_cli >/dev/null
exec "$root/build/release/wandler" run "$@"
