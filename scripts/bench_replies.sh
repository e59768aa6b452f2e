#!/usr/bin/env bash
# Replies benchmark (issue 11): N auto-replies to a private Postfix on 127.0.0.1
# (scripts/mailservers.sh), in each MODE of examples/reply_bench.rs:
#   lettre  — lettre's own transport (no TCP_NODELAY: the reply path before issue 11)
#   oneshot — one connection per mail, TCP_NODELAY
#   session — one connection per round (the daemon's outbox sender), TCP_NODELAY
#
#   bash scripts/bench_replies.sh [N [MODE ...]]    default N = 300, all three modes
#   SKIP_BUILD=1   use the release example already built
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
N=${1:-300}
shift || true
[ $# -gt 0 ] || set -- lettre oneshot session
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --quiet --example reply_bench
fi
BIN=$REPO/target/release/examples/reply_bench
D=$(mktemp -d /tmp/mireply-XXXXXX)
trap 'bash "$REPO/scripts/mailservers.sh" destroy "$D" >/dev/null 2>&1 || true' EXIT
(unset IMAP_PORT SMTP_PORT LMTP_PORT; bash scripts/mailservers.sh start "$D" >/dev/null)
SMTP_PORT=$(sed -n 's/^SMTP_PORT=//p' "$D/env")
echo "machine: $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in "$@"; do
  "$BIN" "127.0.0.1:$SMTP_PORT" t.ivanova@sev.gov.ru "$N" "$mode"
done
