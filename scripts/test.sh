#!/usr/bin/env bash
# Runs every check the project has: formatting, lints, unit tests, golden fixtures, and the
# integration tests against real Dovecot + Postfix on loopback. This is the README's test command
# and what .ci/run calls. It installs what is missing (Debian packages, Rust components) first.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for cmd in dovecot:dovecot-core doveadm:dovecot-core postfix:postfix swaks:swaks; do
  command -v "${cmd%%:*}" >/dev/null 2>&1 || need_pkgs+=("${cmd#*:}")
done
[ -e /usr/lib/dovecot/imap ] || need_pkgs+=(dovecot-imapd)
[ -e /usr/lib/dovecot/lmtp ] || need_pkgs+=(dovecot-lmtpd)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd dovecot-lmtpd postfix swaks >/dev/null
fi
# The web console's browser tests drive a real headless Chromium through chromedriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "== installing chromium chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
# The operations tests: openssl makes a CA (tests/tls.rs); systemd-analyze checks the packaged
# units and cargo-deb builds the package (tests/package.rs, scripts/package.sh).
ops_pkgs=()
command -v openssl >/dev/null 2>&1 || ops_pkgs+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || ops_pkgs+=(systemd)
if [ ${#ops_pkgs[@]} -gt 0 ]; then
  echo "== installing ${ops_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${ops_pkgs[@]}" >/dev/null
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "== installing cargo-deb (about 2.5 min)"
  cargo install --locked --quiet cargo-deb --version 3.8.0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --all-targets 2>&1 | tee "$log"
# One closing line for the whole run (each test binary prints its own "test result" line).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
