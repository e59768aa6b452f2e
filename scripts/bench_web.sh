#!/usr/bin/env bash
# Benchmark of the web console (issue 8): page times over a store of N tickets.
#   bash scripts/bench_web.sh [N=100000] [ROUNDS=200]
# Builds the release binary and examples/web_bench_store.rs (SKIP_BUILD=1 reuses them), fills a
# store with N tickets through the real engine and store plus one ticket with 10 screenshots,
# starts `mailintake web` on a free loopback port, logs in with curl and asks each page ROUNDS
# times, one request at a time; prints the median and the 90th percentile of curl's time_total
# (request sent → whole answer read). No mail servers are needed. KEEP=1 keeps the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
ROUNDS=${2:-200}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet --bin mailintake --example web_bench_store
fi
TARGET=${TARGET:-target/release}   # TARGET=target/debug SKIP_BUILD=1: try the script quickly
BIN=$TARGET/mailintake
DIR=$(mktemp -d /tmp/mailintake-webbench.XXXXXX)
WEB_PID=
cleanup() {
  [ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$DIR/mailintake.toml" <<TOML
[imap]
host = "127.0.0.1"
port = 9
security = "none"
username = "help@sevmiac.ru"
password_env = "MAILINTAKE_IMAP_PASSWORD"

[smtp]
host = "127.0.0.1"
port = 9
security = "none"
from = "help@sevmiac.ru"

[store]
path = "$DIR/mailintake.db"

[rules]
dir = "$PWD/rules"

[web]
listen = "127.0.0.1:$PORT"
TOML
echo "== filling a store with $N tickets"
start=$(date +%s)
SHOTS=$("$TARGET"/examples/web_bench_store "$DIR/mailintake.db" "$N")
echo "   done in $(( $(date +%s) - start )) s; $(du -h "$DIR/mailintake.db" | cut -f1) on disk; ticket with 10 screenshots: #$SHOTS"
echo 'bench-password' | "$BIN" user add bench --role admin --config "$DIR/mailintake.toml" >/dev/null
MAILINTAKE_LOG=warn "$BIN" web --config "$DIR/mailintake.toml" 2>"$DIR/web.log" &
WEB_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -fs "$URL/healthz" >/dev/null && break; sleep 0.1; done
JAR="$DIR/cookies"
CSRF=$(curl -fs -c "$JAR" "$URL/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
curl -fs -o /dev/null -b "$JAR" -c "$JAR" --data-urlencode username=bench \
  --data-urlencode password=bench-password --data "csrf=$CSRF" "$URL/login"
measure() { # LABEL PATH
  local label=$1 path=$2 code
  code=$(curl -s -o "$DIR/page" -w '%{http_code}' -b "$JAR" "$URL$path")
  [ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }
  for _ in $(seq "$ROUNDS"); do
    curl -s -o /dev/null -b "$JAR" -w '%{time_total}\n' "$URL$path"
  done | python3 -c '
import sys, statistics
t = sorted(float(x) * 1000 for x in sys.stdin)
p90 = t[int(len(t) * 0.9) - 1]
print(f"   {sys.argv[1]:<46} median {statistics.median(t):6.1f} ms   p90 {p90:6.1f} ms   ({sys.argv[2]} bytes)")
' "$label" "$(wc -c <"$DIR/page")"
}
echo "== $ROUNDS requests per page ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
measure "queue (open tickets, page 1)" "/queue"
measure "queue, all statuses, page 1" "/queue?status=all"
measure "queue, all statuses, page 1000" "/queue?status=all&page=1000"
measure "queue, search by ticket number" "/queue?status=all&q=%23$((N / 2))"
measure "queue, search by sender (text, all statuses)" "/queue?status=all&q=petrov1234"
measure "ticket with 10 screenshots" "/tickets/$SHOTS"
measure "one of its screenshots (image)" "/tickets/$SHOTS/files/0/image"
measure "/metrics" "/metrics"
