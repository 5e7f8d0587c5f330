#!/usr/bin/env bash
# test.sh [STAGE...] - installs what the tests need, then builds and runs every test.
#
# Stages (default: all, in this order):
#   gcc       Release build with gcc, -Werror, all tests
#   clang     Release build with clang, -Werror, all tests
#   sanitize  ASan + UBSan (+ LeakSanitizer) build with clang, all tests
#   tsan      ThreadSanitizer build with clang: the tests of the threaded parts (workers, API,
#             thread pool); any reported race fails the stage
#   fuzz      libFuzzer targets, each for $WANDLER_FUZZ_SECONDS (default 60) from its seed corpus
#   aarch64   cross build for 64-bit ARM (cmake/aarch64-linux-gnu.cmake, engine and kernels only),
#             -Werror, the kernel and format tests under qemu-aarch64 (NEON vs scalar); ~1-2 min
#
# Shared test data (models, golden outputs, tokenizer vectors) is read from $WANDLER_SHARED_DIR,
# default ../shared next to this repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(gcc clang sanitize tsan fuzz aarch64)
jobs=$(nproc)
export WANDLER_SHARED_DIR=${WANDLER_SHARED_DIR:-$(cd "$root/.." && pwd)/shared}
export CTEST_OUTPUT_ON_FAILURE=1

build_and_test() { # name cc extra-cmake-args...
  local name=$1 cc=$2; shift 2
  local dir="$root/build/$name"
  echo "== $name: build" >&2
  CC=$cc cmake -S "$root" -B "$dir" -DWANDLER_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== $name: test" >&2
  (cd "$dir" && ctest -j "$jobs" --timeout 900 ${WANDLER_CTEST_ARGS:-})
}

for stage in "${stages[@]}"; do
  start=$(date +%s)
  case "$stage" in
    gcc) build_and_test gcc gcc -DCMAKE_BUILD_TYPE=Release ;;
    clang) build_and_test clang clang -DCMAKE_BUILD_TYPE=Release ;;
    sanitize)
      # UBSan's options are the programs' own defaults (tests/sanitize/ubsan_defaults.c)
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
        build_and_test sanitize clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWANDLER_SANITIZE=ON ;;
    tsan)
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 WANDLER_CTEST_ARGS="-R ^test_(worker|api|threadpool|pool_chunks)$" \
        build_and_test tsan clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWANDLER_TSAN=ON ;;
    fuzz)
      dir="$root/build/fuzz"
      echo "== fuzz: build" >&2
      CC=clang cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWANDLER_FUZZ=ON \
        -DWANDLER_BUILD_EXAMPLES=OFF >/dev/null
      cmake --build "$dir" -j "$jobs" >/dev/null
      for fuzzer in "$dir"/tests/fuzz_*; do
        name=$(basename "$fuzzer"); corpus="$root/tests/fuzz/corpus/${name#fuzz_}"
        work="$dir/corpus-$name"; mkdir -p "$work"
        echo "== fuzz: $name for ${WANDLER_FUZZ_SECONDS:-60} s" >&2
        if ! "$fuzzer" -max_total_time="${WANDLER_FUZZ_SECONDS:-60}" -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 "$work" "$corpus" > "$work.log" 2>&1; then
          tail -n 60 "$work.log" >&2; echo "fuzz: $name failed (log: $work.log)" >&2; exit 1
        fi
        tail -n 4 "$work.log" >&2
      done ;;
    aarch64)
      "$root/scripts/deps.sh" cross
      build_and_test aarch64 aarch64-linux-gnu-gcc -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" -DWANDLER_KERNELS_ONLY=ON ;;
    *) echo "test.sh: unknown stage '$stage'" >&2; exit 2 ;;
  esac
  echo "== $stage: ok ($(( $(date +%s) - start )) s)" >&2
done
echo "all stages passed: ${stages[*]}" >&2
