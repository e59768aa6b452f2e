#!/usr/bin/env bash
# The README's first command: mailintake doing its job on a local set-up, in about a minute.
#   1. starts a private Dovecot (IMAP) and Postfix (SMTP) on 127.0.0.1 (scripts/mailservers.sh);
#   2. sends fixture mails through SMTP with swaks, as МО staff would;
#   3. runs `mailintake run --once` against the help@sevmiac.ru mailbox;
#   4. shows the tickets created, one ticket in full, and the replies that reached the senders.
# Servers are stopped at the end; pass --keep to leave them running (their env is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0; [ "${1:-}" = "--keep" ] && KEEP=1

command -v dovecot >/dev/null && command -v postfix >/dev/null && command -v swaks >/dev/null || {
  echo "== installing Dovecot, Postfix and swaks (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd dovecot-lmtpd postfix swaks >/dev/null
}
echo "== building mailintake"
cargo build --quiet
BIN=target/debug/mailintake

DIR=$(mktemp -d /tmp/mailintake-demo.XXXXXX)
stop() { [ $KEEP = 1 ] || bash scripts/mailservers.sh stop "$DIR" >/dev/null 2>&1 || true; }
trap stop EXIT
echo "== starting Dovecot + Postfix in $DIR"
bash scripts/mailservers.sh start "$DIR" >/dev/null
# shellcheck disable=SC1091
. "$DIR/env"

WEB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$DIR/mailintake.toml" <<TOML
[imap]
host = "127.0.0.1"
port = $IMAP_PORT
security = "none"
username = "help@sevmiac.ru"
password_env = "MAILINTAKE_IMAP_PASSWORD"
poll_seconds = 2
timeout_seconds = 10

[smtp]
host = "127.0.0.1"
port = $SMTP_PORT
security = "none"
from = "help@sevmiac.ru"

[store]
path = "$DIR/mailintake.db"

[rules]
dir = "$PWD/rules"

[web]
listen = "127.0.0.1:$WEB_PORT"
TOML
export MAILINTAKE_IMAP_PASSWORD=$MS_PASSWORD

FIXTURES=(
  accept/outlook_utf8_inline_screenshot
  accept/thebat_cp1251_8bit
  accept/yandex_html_only
  accept/prio_lowered_minor_urgent
  incomplete/blank_subject
  incomplete/bmp_attachment
  reject/lone_docx_see_attachment
  reject/exe_renamed_jpg
  archives/zip_7_screens
  filter/gmail
  ignore/outlook_out_of_office
)
echo "== sending ${#FIXTURES[@]} mails through Postfix (swaks)"
for f in "${FIXTURES[@]}"; do
  eml=fixtures/$f.eml
  [ -f "$eml" ] || continue
  from=$(python3 - "$eml" <<'PY'
import sys, email.utils, email
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
print(email.utils.parseaddr(m.get('From', ''))[1] or 'nobody@example.com')
PY
)
  bash scripts/mailservers.sh adduser "$DIR" "$from" >/dev/null 2>&1 || true
  swaks -S --server "127.0.0.1:$SMTP_PORT" --from "$from" --to help@sevmiac.ru --data "@$eml"
  printf '   %-45s from %s\n' "$f" "$from"
done
sleep 1

echo "== mailintake run --once"
MAILINTAKE_LOG=warn $BIN run --once --config "$DIR/mailintake.toml"

echo
echo "== mailintake tickets"
$BIN tickets --config "$DIR/mailintake.toml"
echo
echo "== mailintake ticket show 1"
$BIN ticket show 1 --config "$DIR/mailintake.toml"
echo "== replies that reached the senders"
python3 - "$DIR/mail" <<'PY'
import sys, os, email, email.header, email.policy
root = sys.argv[1]
for dom in sorted(os.listdir(root)):
    if dom == 'sevmiac.ru':
        continue
    for user in sorted(os.listdir(os.path.join(root, dom))):
        box = os.path.join(root, dom, user, 'Maildir')
        for sub in ('new', 'cur'):
            d = os.path.join(box, sub)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                m = email.message_from_binary_file(open(os.path.join(d, name), 'rb'), policy=email.policy.default)
                body = m.get_body(('plain',)).get_content().strip().splitlines()
                print(f"-- to {user}@{dom}: {m['Subject']}")
                for line in body[:6]:
                    print("   " + line)
                print("   …")
PY
# An `if`, not `[ … ] && …`: as the last command, a false test would make the demo exit 1.
if [ $KEEP = 1 ]; then
  # The daemon keeps running with the web console (it sends what operators queue).
  echo 'demo-operator' | $BIN user add operator --role admin --config "$DIR/mailintake.toml" >/dev/null
  MAILINTAKE_LOG=warn nohup $BIN run --config "$DIR/mailintake.toml" >"$DIR/daemon.log" 2>&1 &
  echo $! >"$DIR/daemon.pid"
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$WEB_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  echo
  echo "== web console: http://127.0.0.1:$WEB_PORT/   login: operator   password: demo-operator"
  echo "servers and daemon left running; env in $DIR/env; stop with:"
  echo "   kill \$(cat $DIR/daemon.pid); bash scripts/mailservers.sh stop $DIR"
fi
exit 0
