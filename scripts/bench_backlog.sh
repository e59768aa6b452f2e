#!/usr/bin/env bash
# Backlog benchmark (issue 5): N mixed mails appended into a private Dovecot, then
#   1. a bare fetch of the mailbox (examples/bare_fetch.rs: LOGIN, SELECT, UID FETCH 1:* BODY.PEEK[]);
#   2. `mailintake run --once` (release) until the mailbox is empty, under /usr/bin/time -v.
# Prints N, bare fetch s, daemon s, ratio, mails/s, peak RSS MB (and the intake phase alone).
#
#   bash scripts/bench_backlog.sh [N ...]      default N = 1000; several N run one after the other
#   SKIP_BUILD=1   use the release binaries already built
#   KEEP=1         keep the server folder, store and logs (path printed)
#   WRAP="perf record -g -o /tmp/x.data"   run the daemon under a profiler
#   BIN=PATH       the mailintake binary to measure (default target/release/mailintake)
#   BINS="A B"     several binaries, one after the other on the same mails (moved back into the
#                  INBOX between runs, fresh store each time): a before/after on one machine state
#
# The mix: every fixture under 1 MB from fixtures/ (all groups but archives/, broken/ included),
# and about 5 % drawn from fixtures/archives/; each made unique by an `X-Test-Seq: N` header and
# a fresh Message-ID. Senders of reply-worthy fixtures get mailboxes first, so replies are
# delivered; the reply limit is the default (40 per address per day), so most of the replies
# of a large backlog are recorded as suppressed, as in production. Needs root, Dovecot, Postfix
# (scripts/mailservers.sh), python3 (imaplib, sqlite3), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ $# -gt 0 ] || set -- 1000

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== cargo build --release --bin mailintake --example bare_fetch" >&2
  cargo build --release --quiet --bin mailintake --example bare_fetch
fi
DEFAULT_BIN=${BIN:-$REPO/target/release/mailintake}
BIN=$DEFAULT_BIN
BARE=$REPO/target/release/examples/bare_fetch
[ -x "$BIN" ] && [ -x "$BARE" ] || { echo "release binaries missing (unset SKIP_BUILD)" >&2; exit 1; }

bench_one() {
  local n=$1
  local D
  D=$(mktemp -d /tmp/mibench-XXXXXX)
  DIRS+=("$D")
  [ -z "${KEEP:-}" ] || echo "== keeping $D" >&2
  (unset IMAP_PORT SMTP_PORT LMTP_PORT; bash scripts/mailservers.sh start "$D" >/dev/null)
  local IMAP_PORT SMTP_PORT MS_PASSWORD
  IMAP_PORT=$(sed -n 's/^IMAP_PORT=//p' "$D/env")
  SMTP_PORT=$(sed -n 's/^SMTP_PORT=//p' "$D/env")
  MS_PASSWORD=$(sed -n 's/^MS_PASSWORD=//p' "$D/env")
  mkdir -p "$D/bench"

  # Mailboxes for the senders of reply-worthy fixtures.
  "$BIN" check fixtures/ 2>/dev/null | python3 -c '
import sys, json
seen = set()
for line in sys.stdin:
    v = json.loads(line)
    s = (v.get("sender") or "").lower()
    if v["decision"] in ("accept", "incomplete", "reject", "followup") and s and not s.endswith(".") and s not in seen:
        seen.add(s); print(s)
' | while read -r addr; do
    bash scripts/mailservers.sh adduser "$D" "$addr" >/dev/null
  done

  # N mixed mails, appended to help@sevmiac.ru's INBOX.
  local t_append
  t_append=$(date +%s.%N)
  IMAP_PORT=$IMAP_PORT MS_PASSWORD=$MS_PASSWORD N=$n python3 - <<'PY'
import imaplib, os, random, re
n = int(os.environ["N"])
rng = random.Random(n)
plain, archives = [], []
for root, _, files in os.walk("fixtures"):
    for f in sorted(files):
        if not f.endswith(".eml"):
            continue
        p = os.path.join(root, f)
        if os.path.getsize(p) >= 1_000_000:
            continue
        (archives if "/archives" in root else plain).append(open(p, "rb").read())
plain.sort(); archives.sort()
def uniquify(raw, seq):
    crlf = b"\r\n" in raw
    eol = b"\r\n" if crlf else b"\n"
    sep = eol + eol
    i = raw.find(sep)
    head, body = (raw, b"") if i < 0 else (raw[: i + len(eol)], raw[i + len(eol):])
    out, skip = [], False
    for line in head.splitlines(keepends=True):
        if not line[:1] in (b" ", b"\t"):
            skip = line[:11].lower() == b"message-id:"
        if not skip:
            out.append(line)
    return (b"X-Test-Seq: %d" % seq + eol + b"Message-ID: <bench.%d@test.sev.gov.ru>" % seq + eol
            + b"".join(out) + body)
m = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]))
m.login("help@sevmiac.ru", os.environ["MS_PASSWORD"])
n_arch = 0
total = 0
for seq in range(1, n + 1):
    if rng.random() < 0.05:
        raw = rng.choice(archives); n_arch += 1
    else:
        raw = plain[seq % len(plain)]
    raw = uniquify(raw, seq)
    total += len(raw)
    typ, data = m.append("INBOX", None, None, raw)
    assert typ == "OK", data
m.logout()
print(f"appended {n} mails ({n_arch} from fixtures/archives), {total} bytes")
PY
  echo "   append took $(python3 -c "import time;print(round(time.time()-$t_append,1))") s" >&2

  cat > "$D/bench/mailintake.toml" <<EOF
[imap]
host = "127.0.0.1"
port = $IMAP_PORT
security = "none"
username = "help@sevmiac.ru"
password_env = "MAILINTAKE_IMAP_PASSWORD"
mailbox = "INBOX"

[smtp]
host = "127.0.0.1"
port = $SMTP_PORT
security = "none"
from = "help@sevmiac.ru"

[store]
path = "$D/bench/mailintake.db"

[rules]
dir = "$REPO/rules"
EOF

  # Every binary of BINS (default: BIN) on the same mails: between runs, the mails are moved
  # back into the INBOX and the store starts empty.
  local run=0 BIN
  for BIN in ${BINS:-$DEFAULT_BIN}; do
  run=$((run + 1))
  if [ $run -gt 1 ]; then
    IMAP_PORT=$IMAP_PORT MS_PASSWORD=$MS_PASSWORD python3 - <<'PY'
import imaplib, os
m = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]))
m.login("help@sevmiac.ru", os.environ["MS_PASSWORD"])
for folder in ("Processed", "Rejected", "Filtered", "Ignored"):
    if m.select(folder)[0] == "OK":
        m.uid("MOVE", "1:*", "INBOX")
if m.select("Replies")[0] == "OK":
    m.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
    m.expunge()
m.logout()
PY
    rm -f "$D/bench/mailintake.db"*
  fi
  echo "   binary: $BIN" >&2
  # 1. The bare fetch.
  local bare bare_s
  bare=$(IMAP_PASSWORD=$MS_PASSWORD "$BARE" "127.0.0.1:$IMAP_PORT" help@sevmiac.ru INBOX)
  bare_s=$(sed -n 's/.*session_s=\([0-9.]*\).*/\1/p' <<<"$bare")
  echo "   bare fetch: $bare" >&2

  # 2. The daemon, --once, until the mailbox is empty.
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  MAILINTAKE_IMAP_PASSWORD=$MS_PASSWORD MAILINTAKE_LOG=info \
    /usr/bin/time -v -o "$D/bench/time.txt" \
    ${WRAP:-} "$BIN" run --once --config "$D/bench/mailintake.toml" 2>"$D/bench/daemon.log" || rc=$?
  t1=$(date +%s.%N)
  [ $rc -eq 0 ] || { echo "daemon failed ($rc):" >&2; tail -5 "$D/bench/daemon.log" >&2; return 1; }

  N=$n T0=$t0 T1=$t1 BARE_S=$bare_s D=$D python3 - <<'PY'
import os, re, sqlite3, datetime
n = int(os.environ["N"]); t0 = float(os.environ["T0"]); t1 = float(os.environ["T1"])
bare = float(os.environ["BARE_S"]); D = os.environ["D"]
time_txt = open(f"{D}/bench/time.txt").read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_txt).group(1))
daemon = t1 - t0
# The intake phase: --once runs the whole intake pass, then sends; the first "reply sent" ends it.
log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{D}/bench/daemon.log").read())
first_sent = None
for line in log.splitlines():
    if "reply sent" in line:
        ts = line.split()[0]
        first_sent = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        break
intake = (first_sent - t0) if first_sent else daemon
db = sqlite3.connect(f"{D}/bench/mailintake.db")
q = lambda s: db.execute(s).fetchone()[0]
recorded = q("SELECT COUNT(*) FROM mails WHERE outcome NOT IN ('duplicate','own_reply')")
outbox = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
inbox = 0
for sub in ("new", "cur"):
    p = f"{D}/mail/sevmiac.ru/help/Maildir/{sub}"
    for f in os.listdir(p):
        if b"X-Test-Seq:" in open(os.path.join(p, f), "rb").read(4096):
            inbox += 1
print(f"N={n} recorded={recorded} left_in_inbox={inbox} outbox={outbox}")
for line in log.splitlines():
    if "intake pass timings" in line and "recorded=" in line:
        print("  intake pass timings: " + line.split("intake pass timings")[-1].strip())
        break
print(f"N={n}  bare_fetch_s={bare:.2f}  daemon_s={daemon:.2f}  ratio={daemon/bare:.2f}  "
      f"mails_per_s={n/daemon:.0f}  peak_rss_mb={rss_kb/1024:.1f}  "
      f"intake_phase_s={intake:.2f} (ratio {intake/bare:.2f})")
PY
  done
}

DIRS=()
cleanup() {
  [ -z "${KEEP:-}" ] || return 0
  local d
  for d in "${DIRS[@]}"; do bash "$REPO/scripts/mailservers.sh" destroy "$d" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

for n in "$@"; do
  echo "== backlog of $n mails" >&2
  bench_one "$n"
  cleanup
  DIRS=()
done
