#!/usr/bin/env bash
# expect_ub_stop.sh CANARY - passes when CANARY (ub_canary.c) stops at its signed overflow with
# UBSan's report, as every program of the sanitize build must stop at its first error.
out=$("$1" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q "runtime error: signed integer overflow" <<<"$out" &&
  ! grep -q "still running" <<<"$out"; then
  echo "ok: UBSan stopped the canary (exit code $rc)"
  exit 0
fi
echo "expected UBSan to stop the canary at its overflow; exit code $rc, output:" >&2
echo "$out" >&2
exit 1
