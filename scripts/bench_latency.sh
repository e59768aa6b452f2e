#!/usr/bin/env bash
# Latency benchmark (issue 5): the daemon (release) idles in IMAP IDLE; COUNT mails (default 100)
# are sent one at a time through Postfix; for each, the time from the SMTP acceptance of the mail
# to the SMTP acceptance of its auto-reply. Prints p50/p95/p99/max and the machine.
#
#   bash scripts/bench_latency.sh [COUNT]
#   SKIP_BUILD=1   use the release binary already built
#   KEEP=1         keep the server folder, store and logs (path printed)
#
# How the two moments are taken (both on this host's clock, microsecond resolution):
#   - the mail's acceptance: the sending client (python smtplib, one connection per mail, as a
#     mail program would) reads the clock when `sendmail` returns, i.e. right after Postfix's
#     `250` to the end of DATA;
#   - the reply's acceptance: the daemon's own debug line `mail accepted by the SMTP server
#     message_id=...` (src/mail/smtp.rs), written when lettre has Postfix's `250` to the reply's DATA.
#     The reply is matched to the mail by its In-Reply-To, read from the copy delivered to the
#     sender's mailbox (which also proves it was delivered). Postfix's own log has only whole
#     seconds, too coarse for this.
# The next mail is sent once the previous reply has reached the sender's mailbox and its copy
# (smtp.copy_to, delivered to the INBOX) has been recorded by the daemon, plus 200 ms.
# Needs root, Dovecot, Postfix (scripts/mailservers.sh), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
COUNT=${1:-100}

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== cargo build --release --bin mailintake" >&2
  cargo build --release --quiet --bin mailintake
fi
BIN=$REPO/target/release/mailintake

D=$(mktemp -d /tmp/milat-XXXXXX)
DAEMON=
cleanup() {
  [ -z "$DAEMON" ] || { kill -TERM "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; }
  if [ -z "${KEEP:-}" ]; then
    bash "$REPO/scripts/mailservers.sh" destroy "$D" >/dev/null 2>&1 || true
  else
    echo "== kept $D (servers stopped)" >&2
    bash "$REPO/scripts/mailservers.sh" stop "$D" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
(unset IMAP_PORT SMTP_PORT LMTP_PORT; bash scripts/mailservers.sh start "$D" >/dev/null)
IMAP_PORT=$(sed -n 's/^IMAP_PORT=//p' "$D/env")
SMTP_PORT=$(sed -n 's/^SMTP_PORT=//p' "$D/env")
MS_PASSWORD=$(sed -n 's/^MS_PASSWORD=//p' "$D/env")
mkdir -p "$D/bench"
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

# One sender writes all $COUNT mails: lift the per-address reply limit (default 40 a day).
[limits]
replies_per_address_per_day = 100000
EOF

MAILINTAKE_IMAP_PASSWORD=$MS_PASSWORD MAILINTAKE_LOG="info,mailintake::mail::smtp=debug" \
  "$BIN" run --config "$D/bench/mailintake.toml" 2>"$D/bench/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do
  grep -q "connected" "$D/bench/daemon.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "connected" "$D/bench/daemon.log" || { echo "the daemon did not connect:" >&2; cat "$D/bench/daemon.log" >&2; exit 1; }
sleep 1 # into IDLE

SMTP_PORT=$SMTP_PORT COUNT=$COUNT D=$D python3 - <<'PY'
import os, re, time, smtplib, datetime, platform

D = os.environ["D"]; port = int(os.environ["SMTP_PORT"]); count = int(os.environ["COUNT"])
sender = "t.ivanova@sev.gov.ru"
maildir = f"{D}/mail/sev.gov.ru/t.ivanova/Maildir"
log_path = f"{D}/bench/daemon.log"
run = int(time.time())
form = ("Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, "
        "ГБУЗС «Городская больница №1», +7 (8692) 55-12-34\r\n"
        "ФИО пользователя, логин: Петров Пётр Петрович, ppetrov\r\n"
        "Данные пациента: Сидоров С.С., № карты 123456\r\n"
        "Последовательность выполняемых действий: Регистратура → Расписание → Запись\r\n"
        "Описание ошибки: Шаблон посещения не существует\r\n")

def ts(line):
    return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()

def accepted_at(message_id):
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(log_path, encoding="utf-8", errors="replace").read())
    for line in text.splitlines():
        if "mail accepted by the SMTP server" in line and f"message_id={message_id}" in line:
            return ts(line)
    return None

def ticket_at(ticket):
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(log_path, encoding="utf-8", errors="replace").read())
    for line in text.splitlines():
        if "ticket created" in line and re.search(rf"\bticket={ticket}\b", line):
            return ts(line)
    return None

def own_replies():
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(log_path, encoding="utf-8", errors="replace").read())
    return text.count("outcome=OwnReply")

def find_reply(mid, seen):
    for sub in ("new", "cur"):
        for f in os.listdir(f"{maildir}/{sub}"):
            p = f"{maildir}/{sub}/{f}"
            if p in seen:
                continue
            raw = open(p, "rb").read()
            if f"In-Reply-To: <{mid}>".encode() in raw:
                seen.add(p)
                m = re.search(rb"^Message-ID:\s*<([^>]+)>", raw, re.M | re.I)
                return m.group(1).decode()
    return None

lat, intake = [], []
seen = set()
for i in range(1, count + 1):
    mid = f"lat.{run}.{i}@test.sev.gov.ru"
    raw = (f"From: Иванова Т.А. <{sender}>\r\nTo: help@sevmiac.ru\r\nSubject: Проверка задержки {i}\r\n"
           f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\nMessage-ID: <{mid}>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + form).encode()
    s = smtplib.SMTP("127.0.0.1", port)
    s.sendmail(sender, ["help@sevmiac.ru"], raw)
    t_mail = time.time()          # Postfix's 250 to our DATA has been read
    s.quit()
    deadline = time.time() + 30
    reply_id = None
    while reply_id is None and time.time() < deadline:
        time.sleep(0.005)
        reply_id = find_reply(mid, seen)
    if reply_id is None:
        raise SystemExit(f"mail {i}: no reply within 30 s")
    t_reply = None
    while t_reply is None and time.time() < deadline:
        t_reply = accepted_at(reply_id)
        if t_reply is None:
            time.sleep(0.01)
    if t_reply is None:
        raise SystemExit(f"mail {i}: reply {reply_id} not in the daemon's log")
    lat.append(t_reply - t_mail)
    t_ticket = ticket_at(reply_id.split(".")[1])
    if t_ticket is not None:
        intake.append(t_ticket - t_mail)
    # The copy of the reply (smtp.copy_to) lands in the INBOX too and wakes the daemon; let it be
    # recorded first, so that the next mail is not picked up by that pass (which would make it
    # look faster than a mail arriving on its own).
    while own_replies() < i and time.time() < deadline + 10:
        time.sleep(0.01)
    time.sleep(0.2)

def pct(v, p):
    v = sorted(v)
    k = max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))   # nearest rank
    return v[k]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1024 / 1024
print(f"machine: {os.cpu_count()} CPUs ({cpu}), {mem:.1f} GiB RAM, {platform.system()} {platform.release()}")
print(f"{len(lat)} mails, one at a time: mail accepted by Postfix -> its auto-reply accepted by Postfix")
print("p50={:.3f} s  p95={:.3f} s  p99={:.3f} s  max={:.3f} s  min={:.3f} s  mean={:.3f} s".format(
    pct(lat, 50), pct(lat, 95), pct(lat, 99), max(lat), min(lat), sum(lat) / len(lat)))
if intake:
    print("of which mail accepted -> ticket committed (IDLE wake-up, fetch, judge, commit): "
          "p50={:.3f} s  p95={:.3f} s  max={:.3f} s".format(pct(intake, 50), pct(intake, 95), max(intake)))
PY
