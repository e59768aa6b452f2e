#!/usr/bin/env bash
# Fuzz the engine with cargo-fuzz (libFuzzer + AddressSanitizer): scripts/fuzz.sh [SECONDS] [TARGET...]
#
#   SECONDS  time per target (default 60); TARGET: verdict, form, archive, auth (default: all four)
#
# - Installs cargo-fuzz if missing. The machine has stable rustc only; cargo-fuzz needs -Z flags
#   (-Zsanitizer), which stable rustc takes with RUSTC_BOOTSTRAP=1, set here for the fuzz build only.
# - Copies fuzz/seeds/<target>/ (committed; rebuilt from fixtures/ by fuzz/make_seeds.py) and the
#   regression inputs that no longer crash into fuzz/corpus/<target>/ (git-ignored, kept between
#   runs, so later runs start from what earlier ones found).
# - Runs each target for SECONDS. A crash, timeout (an input taking over FUZZ_TIMEOUT seconds, 10 by
#   default) or out-of-memory (over 2048 MB RSS) is copied into fuzz/regressions/<target>/ (commit
#   it: tests/fuzz_corpus.rs replays it on every `cargo test`), its report is printed, and the
#   target is started again for the rest of its time (at most FUZZ_MAX_CRASHES=5 restarts).
# - Panics that the library catches itself (third-party archive readers run under catch_unwind)
#   are not crashes; they are listed per location in the summary. FUZZ_STRICT_PANICS=1 makes
#   every panic a crash. FUZZ_SANITIZER=none builds without AddressSanitizer (faster).
# - Ends with one summary line per target (execs, execs/s, coverage, corpus size, crashes); the
#   full logs are in fuzz/artifacts/<target>/fuzz-*.log. Exits 1 if anything crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(verdict form archive auth)
case $secs in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
for t in "${targets[@]}"; do
  case $t in verdict | form | archive | auth) ;; *) echo "unknown target $t (verdict, form, archive, auth)" >&2; exit 2 ;; esac
done

if ! python3 fuzz/make_seeds.py --check >/dev/null 2>&1; then
  echo "== note: fuzz/seeds/ is out of date with fixtures/ (python3 fuzz/make_seeds.py rebuilds it)"
fi

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}
timeout_s=${FUZZ_TIMEOUT:-10}
max_crashes=${FUZZ_MAX_CRASHES:-5}
triple=$(rustc -vV | sed -n 's/^host: //p')
build_flags=(-O --debug-assertions --sanitizer "$sanitizer")

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Built once, then the binaries are run directly (not `cargo fuzz run`, which would rebuild
# whenever src/ changed meanwhile): every target fuzzes the same snapshot of the code.
echo "== cargo fuzz build (sanitizer $sanitizer)"
cargo fuzz build "${build_flags[@]}"

max_len() {
  case $1 in
    form) echo 65536 ;;
    *) echo 1048576 ;;
  esac
}

# The crash, timeout, out-of-memory and leak inputs libFuzzer saved in folder $1, one per line.
artifacts() {
  find "$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \
    -o -name 'leak-*' \) -printf '%f\n' | sort
}

summary=()
total_crashes=0
for t in "${targets[@]}"; do
  bin=fuzz/target/$triple/release/$t
  corpus=fuzz/corpus/$t
  arts=fuzz/artifacts/$t
  regs=fuzz/regressions/$t
  mkdir -p "$corpus" "$arts" "$regs"
  cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  # Regression inputs join the corpus once they pass (a crashing one would stop libFuzzer at start).
  still=0
  for f in "$regs"/*; do
    [ -f "$f" ] || continue
    if "$bin" -rss_limit_mb=2048 -timeout="$timeout_s" "$f" >/dev/null 2>&1; then
      cp -n "$f" "$corpus"/ 2>/dev/null || true
    else
      still=$((still + 1))
    fi
  done
  [ $still -eq 0 ] || echo "== $t: $still regression input(s) in $regs still fail"

  execs=0
  crashes=0
  cov='?'
  ft='?'
  left=$secs
  run=0
  stamp=$(date +%Y%m%d-%H%M%S)
  while [ "$left" -gt 0 ]; do
    run=$((run + 1))
    log=$arts/fuzz-$stamp-$run.log
    echo "== fuzzing $t for ${left}s (run $run; log $log)"
    started=$(date +%s)
    before=$(artifacts "$arts")
    set +e
    "$bin" -artifact_prefix="$arts/" \
      -max_total_time="$left" -max_len="$(max_len "$t")" -rss_limit_mb=2048 \
      -timeout="$timeout_s" -print_final_stats=1 "$corpus" >"$log" 2>&1
    rc=$?
    set -e
    left=$((left - ($(date +%s) - started)))
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # A run that crashed prints no final stats: its last status line tells the count.
    [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    execs=$((execs + ${n:-0}))
    line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    if [ -n "$line" ]; then
      cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$line")
      ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$line")
    fi
    after=$(artifacts "$arts")
    new=$(comm -13 <(echo "$before") <(echo "$after") | grep . || true)
    if [ $rc -ne 0 ] && [ -z "$new" ]; then
      echo "!! $t: the fuzzer exited $rc without an artifact; see $log" >&2
      tail -30 "$log" >&2
      crashes=$((crashes + 1))
      break
    fi
    for a in $new; do
      crashes=$((crashes + 1))
      cp "$arts/$a" "$regs/$a"
      echo "!! $t: $a kept as $regs/$a"
      grep -E '^mailintake-fuzz: (UNCAUGHT|STRICT)|^==[0-9]+==ERROR|^SUMMARY|libFuzzer: (deadly|out-of-memory|timeout)' "$log" | head -5 | sed 's/^/   /'
      grep -E "^ +at (\./)?src/|$PWD/src/" "$log" | head -3 | sed 's/^/   /' || true
    done
    [ $rc -ne 0 ] || break
    [ $crashes -lt "$max_crashes" ] || { echo "== $t: $crashes crashes, stopping"; break; }
    [ "$left" -gt 5 ] || break
  done

  rate=$((execs / (secs > 0 ? secs : 1)))
  files=$(find "$corpus" -type f | wc -l)
  caught=$(cat "$arts"/fuzz-"$stamp"-*.log 2>/dev/null |
    sed -n 's/^mailintake-fuzz: panic (maybe caught) at \([^:]*:[0-9]*\):.*/\1/p' | sort -u | paste -sd, - || true)
  summary+=("$t: $execs execs (~$rate/s), cov $cov ft $ft, corpus $files files, crashes $crashes${caught:+, caught panics at $caught}")
  total_crashes=$((total_crashes + crashes))
done

echo
echo "== summary (${secs}s per target, sanitizer $sanitizer)"
for s in "${summary[@]}"; do echo "$s"; done
[ $total_crashes -eq 0 ]
