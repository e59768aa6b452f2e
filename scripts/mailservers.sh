#!/usr/bin/env bash
# mailservers.sh - private Dovecot (IMAP + LMTP) and Postfix (SMTP) on 127.0.0.1
# for mailintake's integration tests.  See scripts/README-servers.md.
#
#   mailservers.sh start DIR            set up under DIR, start both, print env lines
#   mailservers.sh stop DIR             stop both (idempotent)
#   mailservers.sh destroy DIR          stop, release the ports, rm -rf DIR
#   mailservers.sh stop-imap|start-imap|restart-imap DIR
#   mailservers.sh kill-imap DIR        SIGKILL all Dovecot processes (crash)
#   mailservers.sh stop-smtp|start-smtp|restart-smtp DIR
#   mailservers.sh adduser DIR ADDRESS  add a mailbox (password = MS_PASSWORD)
#   mailservers.sh smtp-fault DIR 4xx|5xx|off
#   mailservers.sh status DIR           show what runs (exit 0 if both run)
#   mailservers.sh env DIR              print DIR/env
#
# TLS (opt-in): when DIR/tls/cert.pem and DIR/tls/key.pem exist at "start",
# Dovecot offers STARTTLS on IMAP_PORT and implicit TLS on IMAPS_PORT, Postfix
# STARTTLS on SMTP_PORT and implicit TLS on SMTPS_PORT (both written to env).
# Without them nothing changes: no TLS at all.
#
# Needs root, bash, coreutils, util-linux (flock), awk, and the Debian packages
# dovecot-core dovecot-imapd dovecot-lmtpd postfix (swaks only for manual tests).
set -euo pipefail

PROG=${0##*/}
DEFAULT_USERS=(help@sevmiac.ru ops@sevmiac.ru t.ivanova@sev.gov.ru p.petrov@sev.gov.ru user@example.com robot@sev.gov.ru)
DEFAULT_DOMAINS="sevmiac.ru sev.gov.ru example.com"
WAIT_SECS=${MS_WAIT_SECS:-10}
PROBE_RCPT=help@sevmiac.ru

die() { echo "$PROG: error: $*" >&2; exit 1; }
warn() { echo "$PROG: warning: $*" >&2; }
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------- helpers

# now in milliseconds
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

tcp_tables() { local f; for f in /proc/net/tcp /proc/net/tcp6; do [[ -r $f ]] && echo "$f"; done; }

# Is anything bound to TCP port $1 (any state, any address)?  Reads /proc, no
# connection is made, so it is cheap and has no side effects.
port_busy() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { f = 1; exit } END { exit !f }' \
        $(tcp_tables) 2>/dev/null
}

# Is something LISTENing on port $1 (state 0A)?
port_listening() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v h="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { f = 1; exit } END { exit !f }' \
        $(tcp_tables) 2>/dev/null
}

# Port claims.  Every set-up records the ports it uses as symlinks
# $MS_PORT_REGISTRY/PORT -> DIR (default /tmp/.mailservers-ports).  A claim
# whose DIR no longer exists is stale and can be taken over.  This matters
# because Postfix listens with SO_REUSEPORT: a second Postfix on the same
# port does NOT fail, both silently share the connections.  So two set-ups
# must never pick the same SMTP port, and a stopped set-up keeps its ports.
REG=${MS_PORT_REGISTRY:-/tmp/.mailservers-ports}

claim_port() { # PORT: 0 = claimed for $D (now or before), 1 = owned by another live set-up
    mkdir -p "$REG"
    (
        flock -w 10 8 || exit 1
        t=$(readlink "$REG/$1" 2>/dev/null || true)
        if [[ -n $t && $t != "$D" && -d $t ]]; then exit 1; fi
        ln -sfn "$D" "$REG/$1"
    ) 8>>"$REG/.lock"
}

release_port() { # PORT: drop the claim if it is ours
    [[ -n ${1:-} && -d $REG ]] || return 0
    (
        flock -w 10 8 || exit 0
        [[ $(readlink "$REG/$1" 2>/dev/null || true) == "$D" ]] && rm -f "$REG/$1"
        exit 0
    ) 8>>"$REG/.lock"
}

release_all_ports() { # every claim that points to $D
    [[ -d $REG ]] || return 0
    (
        flock -w 10 8 || exit 0
        for f in "$REG"/[0-9]*; do
            [[ -L $f && $(readlink "$f") == "$D" ]] && rm -f "$f"
        done
        exit 0
    ) 8>>"$REG/.lock"
}

gc_port_claims() { # drop claims whose set-up directory is gone
    [[ -d $REG ]] || return 0
    (
        flock -w 10 8 || exit 0
        for f in "$REG"/[0-9]*; do
            [[ -L $f && ! -d $(readlink "$f") ]] && rm -f "$f"
        done
        exit 0
    ) 8>>"$REG/.lock"
}

port_owner() { readlink "$REG/$1" 2>/dev/null || echo "another program"; }

# Pick and claim a random free port outside the kernel's ephemeral range (so
# that outgoing connections of other processes cannot sit on it) and not in
# the list "$*" (ports already chosen in this run).
pick_port() {
    local lo hi rlo rhi p n
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range || { lo=32768; hi=60999; }
    if ((lo > 12000)); then rlo=10000; rhi=$((lo - 1)); else rlo=$((hi + 1)); rhi=65000; fi
    ((rhi - rlo > 100)) || { rlo=20000; rhi=29999; }
    for ((n = 0; n < 500; n++)); do
        p=$((rlo + (${SRANDOM:-$((RANDOM * 32768 + RANDOM))} % (rhi - rlo + 1))))
        [[ " $* " == *" $p "* ]] && continue
        port_busy "$p" && continue
        claim_port "$p" || continue
        echo "$p"
        return 0
    done
    die "could not find a free TCP port in $rlo-$rhi"
}

# use_port NAME PINNED EXCLUDES...: make port variable NAME usable.
#  PINNED=1 (came from the environment): claim it and check nothing listens
#  on it, else fail.  Otherwise keep the current value (previous run of this
#  DIR) if it is still free and claimable, else pick a new one.
use_port() {
    local name=$1 pinned=$2 cur
    shift 2
    cur=${!name}
    if [[ -n $cur ]]; then
        if [[ $pinned == 1 ]]; then
            claim_port "$cur" || die "$name=$cur is used by the mailservers set-up $(port_owner "$cur")"
            ! port_listening "$cur" || die "$name=$cur: something already listens on 127.0.0.1:$cur"
            return 0
        fi
        if claim_port "$cur" && ! port_listening "$cur"; then return 0; fi
    fi
    local v
    v=$(pick_port "$@") || exit 1
    printf -v "$name" '%s' "$v"
}

# wait_banner PORT REGEX: wait (bounded) until a connection to 127.0.0.1:PORT
# gets a first line matching REGEX.  Plain bash /dev/tcp, no python needed.
wait_banner() {
    local port=$1 re=$2 deadline line
    deadline=$(($(now_ms) + WAIT_SECS * 1000))
    while (($(now_ms) < deadline)); do
        line=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && IFS= read -r -t 2 l <&3 && printf '%s' "$l") 2>/dev/null || true)
        line=${line%$'\r'}
        if [[ $line =~ $re ]]; then return 0; fi
        sleep 0.05
    done
    return 1
}

# smtp_rcpt_code PORT RCPT: print the reply code the SMTP server gives to
# "RCPT TO:<RCPT>" after "MAIL FROM:<>" (nothing is sent: QUIT follows).
smtp_rcpt_code() {
    local port=$1 rcpt=$2
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        reply() { # read a (multi-line) reply, print its code
            local l
            while IFS= read -r -t 5 l <&3; do
                l=${l%$'\r'}
                if [[ ${l:3:1} != "-" ]]; then printf '%s' "${l:0:3}"; return 0; fi
            done
            return 1
        }
        c=$(reply) && [[ $c == 220 ]] || exit 1
        printf 'EHLO probe.test.local\r\n' >&3
        c=$(reply) && [[ $c == 250 ]] || exit 1
        printf 'MAIL FROM:<>\r\n' >&3
        c=$(reply) && [[ $c == 250 ]] || { echo "$c"; exit 0; }
        printf 'RCPT TO:<%s>\r\n' "$rcpt" >&3
        c=$(reply) || exit 1
        printf 'QUIT\r\n' >&3
        reply >/dev/null || true
        echo "$c"
    ) 2>/dev/null
}

# wait_rcpt PORT RCPT REGEX: wait until RCPT gets a reply code matching REGEX
# on three fresh connections in a row (after "postfix reload" old smtpd
# processes may still answer for a moment).
wait_rcpt() {
    local port=$1 rcpt=$2 re=$3 deadline code ok=0
    deadline=$(($(now_ms) + WAIT_SECS * 1000))
    while (($(now_ms) < deadline)); do
        code=$(smtp_rcpt_code "$port" "$rcpt" || true)
        if [[ $code =~ $re ]]; then
            ok=$((ok + 1))
            ((ok >= 3)) && return 0
        else
            ok=0
            sleep 0.05
        fi
    done
    return 1
}

# Postfix refuses to trust a configuration file modified within the last
# second or two: it re-reads it every 300 ms until its mtime is in the past
# (dict_load_file), which makes every postconf/postfix/daemon start after an
# edit take ~2 s.  Back-date generated files.
backdate() { touch -d "@$(($(date +%s) - 10))" "$@"; }

# proc_matches PID STRING: PID is alive and its command line contains STRING
proc_matches() {
    local pid=$1 s=$2 cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$s"* ]]
}

# alive PID: the process exists and is not a zombie (a daemon's parent may be
# an init that is slow to reap: a dead Dovecot master stayed <defunct> ~2 s).
alive() {
    local l
    read -r l 2>/dev/null <"/proc/$1/stat" || return 1
    l=${l##*) }
    [[ ${l:0:1} != [ZX] ]]
}

# group_alive PGID: some live (non-zombie) process is in process group PGID.
group_alive() {
    local f l a
    for f in /proc/[0-9]*/stat; do
        read -r l 2>/dev/null <"$f" || continue
        l=${l##*) }                 # "S ppid pgrp ..."
        a=($l)
        [[ ${a[2]} == "$1" && ${a[0]} != [ZX] ]] && return 0
    done
    return 1
}

wait_group_gone() { # PGID TIMEOUT_MS
    local deadline
    deadline=$(($(now_ms) + $2))
    while group_alive "$1"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.02
    done
}

wait_pid_gone() { # PID TIMEOUT_MS
    local pid=$1 deadline
    deadline=$(($(now_ms) + $2))
    while alive "$pid"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.02
    done
}

wait_port_free() { # PORT TIMEOUT_MS
    local deadline
    deadline=$(($(now_ms) + $2))
    while port_listening "$1"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.02
    done
}

# ------------------------------------------------------------ set-up paths

set_paths() {
    [[ -n ${1:-} ]] || usage
    local d=$1
    [[ $d == /* ]] || d="$PWD/$d"
    d=${d%/}
    [[ $d =~ ^[A-Za-z0-9._/+-]+$ ]] ||
        die "DIR must be a path made of [A-Za-z0-9._/+-] only (Postfix and Dovecot configs cannot quote it): '$1'"
    D=$d
    DC=$D/dovecot            # dovecot.conf, users, state/
    RUN=$D/run               # Dovecot base_dir (sockets, master.pid)
    MAIL=$D/mail             # maildirs: mail/DOMAIN/LOCAL/Maildir
    PC=$D/postfix            # main.cf, master.cf, vmailbox
    PQ=$D/postfix-queue      # queue_directory (root-owned)
    PD=$D/postfix-data       # data_directory (postfix-owned)
    ENVF=$D/env
    LOG=$D/mailservers.log   # output of the commands this script runs
}

lock_dir() {
    exec 9>>"$D/.lock"
    flock -w 30 9 || die "could not lock $D/.lock"
}

load_env() {
    [[ -f $ENVF ]] || die "$D is not a mailservers set-up (no $ENVF); run '$PROG start $D' first"
    local k v
    while IFS='=' read -r k v; do
        case $k in
            IMAP_PORT) IMAP_PORT=$v ;;
            SMTP_PORT) SMTP_PORT=$v ;;
            LMTP_PORT) LMTP_PORT=$v ;;
            MS_PASSWORD) MS_PASSWORD=$v ;;
            IMAPS_PORT) IMAPS_PORT=$v ;;
            SMTPS_PORT) SMTPS_PORT=$v ;;
        esac
    done <"$ENVF"
}

write_env() {
    local tmp=$ENVF.tmp
    cat >"$tmp" <<EOF
MS_DIR=$D
IMAP_HOST=127.0.0.1
IMAP_PORT=$IMAP_PORT
SMTP_HOST=127.0.0.1
SMTP_PORT=$SMTP_PORT
LMTP_PORT=$LMTP_PORT
MS_PASSWORD=$MS_PASSWORD
EOF
    if tls_on; then
        printf 'IMAPS_PORT=%s\nSMTPS_PORT=%s\nMS_TLS_CERT=%s\n' "$IMAPS_PORT" "$SMTPS_PORT" "$D/tls/cert.pem" >>"$tmp"
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$ENVF"
}

# TLS is on when the test put a certificate and its key into DIR/tls/.
tls_on() { [[ -f $D/tls/cert.pem && -f $D/tls/key.pem ]]; }

dovecot_major_minor() {
    dovecot --version 2>/dev/null | awk '{ split($1, a, "."); print a[1] "." a[2]; exit }'
}

# ------------------------------------------------------------------ users

normalize_address() {
    local a=${1,,}
    [[ $a =~ ^[a-z0-9._+-]+@[a-z0-9.-]+\.[a-z]+$ ]] || die "not a plain mail address: '$1'"
    [[ ${a%@*} != *+* ]] || die "'+' is the recipient delimiter and cannot be part of a user name: '$1'"
    printf '%s' "$a"
}

# add_user_files ADDRESS: passwd-file line, Postfix map line, maildir.
# Returns 0 if something changed, 1 if the user already existed.
add_user_files() {
    local a=$1 lp=${1%@*} dom=${1#*@} changed=1 md
    if ! grep -q "^$a:" "$DC/users" 2>/dev/null; then
        printf '%s:{PLAIN}%s::::::\n' "$a" "$MS_PASSWORD" >>"$DC/users"
        changed=0
    fi
    if ! grep -q "^$a " "$PC/vmailbox" 2>/dev/null; then
        printf '%s %s/%s/\n' "$a" "$dom" "$lp" >>"$PC/vmailbox"
        changed=0
    fi
    if [[ " $(cat "$PC/vdomains") " != *" $dom "* ]]; then
        printf '%s %s' "$(cat "$PC/vdomains")" "$dom" | sed 's/^ *//' >"$PC/vdomains.tmp"
        mv -f "$PC/vdomains.tmp" "$PC/vdomains"
        changed=0
    fi
    # INBOX (LAYOUT=fs: ~/Maildir itself is INBOX).  Created now so that tests
    # can look at the files at once; no other folder is created.
    md=$MAIL/$dom/$lp/Maildir
    if [[ ! -d $md/new ]]; then
        install -d -o mail -g mail -m 0755 "$MAIL/$dom" "$MAIL/$dom/$lp" "$md" "$md/cur" "$md/new" "$md/tmp"
    fi
    return $changed
}

# ---------------------------------------------------------------- Dovecot

dovecot_ssl_conf() {
    if tls_on; then
        printf 'ssl = yes\nssl_cert = <%s\nssl_key = <%s\n' "$D/tls/cert.pem" "$D/tls/key.pem"
    else
        printf 'ssl = no\n'
    fi
}

write_dovecot_conf() {
    local ver
    ver=$(dovecot_major_minor)
    case $ver in
        2.3) ;;
        2.[012]) warn "Dovecot $ver is older than the tested 2.3; trying anyway" ;;
        *) die "Dovecot $ver: only the 2.3 configuration syntax is implemented (2.4 renamed most settings, e.g. mail_location -> mail_driver/mail_path, disable_plaintext_auth -> auth_allow_cleartext)" ;;
    esac
    install -d -m 0755 "$DC"
    install -d -m 0750 -o root -g dovecot "$DC/state"
    cat >"$DC/dovecot.conf.tmp" <<EOF
# Generated by $PROG - private Dovecot for tests.  Nothing from /etc/dovecot
# is included.
base_dir = $RUN
state_dir = $DC/state
listen = 127.0.0.1
protocols = imap lmtp
shutdown_clients = yes
verbose_proctitle = yes

log_path = $D/dovecot.log
info_log_path = $D/dovecot.log
debug_log_path = $D/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
auth_verbose = yes

# Plaintext on loopback only (Dovecot 2.3 spelling; 2.4 calls it auth_allow_cleartext).
$(dovecot_ssl_conf)
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
# A wrong password is answered quickly (~0.5 s): no auth_failure_delay
# (default 2 s) and no anvil "auth penalty" (after a failure, every further
# login from the same IP - all tests use 127.0.0.1 - waited 4 s, up to 15 s).
# login_trusted_networks does not lift the penalty in 2.3.19; making the
# anvil-auth-penalty socket unusable does (auth runs as "dovecot").
auth_failure_delay = 0

default_login_user = dovenull
default_internal_user = dovecot
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
first_valid_gid = 8

# INBOX = ~/Maildir, folders are ~/Maildir/NAME (hierarchy separator "/").
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {
  inbox = yes
  separator = /
  prefix =
}
# No "mailbox X { auto = ... }" blocks: no folder exists unless a client CREATEs it.

recipient_delimiter = +
lmtp_save_to_detail_mailbox = no

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu $DC/users
}
userdb {
  driver = passwd-file
  args = username_format=%Lu $DC/users
  default_fields = uid=mail gid=mail home=$MAIL/%d/%n
}

protocol imap {
  mail_max_userip_connections = 200
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
$(if tls_on; then printf '    address = 127.0.0.1\n    port = %s\n    ssl = yes\n' "$IMAPS_PORT"; else printf '    port = 0\n'; fi)
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
EOF
    mv -f "$DC/dovecot.conf.tmp" "$DC/dovecot.conf"
}

dovecot_pid() {
    local pid
    pid=$(head -n1 "$RUN/master.pid" 2>/dev/null) || return 1
    proc_matches "$pid" "$DC/dovecot.conf" || return 1
    echo "$pid"
}

dovecot_running() { dovecot_pid >/dev/null; }

wait_dovecot_user() {
    local deadline
    deadline=$(($(now_ms) + WAIT_SECS * 1000))
    until doveadm -c "$DC/dovecot.conf" user "$1" >/dev/null 2>&1 &&
        doveadm -c "$DC/dovecot.conf" auth test "$1" "$MS_PASSWORD" >/dev/null 2>&1; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.1
    done
}

# Dovecot's master is a session leader: all its processes (imap, lmtp,
# imap-login, auth, log, ...) share its process group, which is remembered in
# DIR/run/pgid so that even a crashed master's children can be found.
#
# SIGTERM goes to the whole group, not only to the master: on a TERM of the
# master alone, Dovecot 2.3 lets logged-in imap processes live on until their
# client leaves (an IDLEing client kept working against the "stopped" server),
# and the master lingers ~1 s.  TERM to the group makes every imap process
# send "* BYE Server shutting down." and exit at once.
stop_dovecot() { # [SIGNAL]
    local sig=${1:-TERM} pid pg=''
    pg=$(cat "$RUN/pgid" 2>/dev/null || true)
    if pid=$(dovecot_pid); then pg=$pid; fi
    if [[ $pg =~ ^[0-9]+$ ]] && group_alive "$pg"; then
        kill "-$sig" -- "-$pg" 2>/dev/null || true
        if ! wait_group_gone "$pg" 5000; then
            warn "Dovecot (process group $pg) did not stop on SIG$sig; killing"
            kill -KILL -- "-$pg" 2>/dev/null || true
            wait_group_gone "$pg" 2000 || warn "Dovecot processes of group $pg are still alive"
        fi
    fi
    # Wait until nothing listens any more so that a restart can bind the same ports.
    local p
    for p in ${IMAP_PORT:-} ${LMTP_PORT:-}; do
        wait_port_free "$p" 3000 || warn "port $p still in use after stopping Dovecot"
    done
    rm -f "$RUN/master.pid" "$RUN/pgid"
}

# start_dovecot_once: 0 = running, 1 = failed, 2 = a port was taken (retryable)
start_dovecot_once() {
    local out rc=0
    install -d -m 0755 "$RUN"
    # With "mode = 0" Dovecot does not create this socket; a stale one from an
    # earlier run would make auth log "Connection refused" errors.
    rm -f "$RUN/anvil-auth-penalty"
    # Never run the daemons inside $(...): the daemonized master keeps the
    # inherited stdout/stderr open and the command substitution never ends.
    dovecot -c "$DC/dovecot.conf" </dev/null >"$D/.start.out" 2>&1 9>&- || rc=$?
    out=$(cat "$D/.start.out")
    [[ -z $out ]] || echo "$out" >>"$LOG"
    if ((rc == 0)); then dovecot_pid >"$RUN/pgid" 2>/dev/null || true; fi
    if ((rc != 0)); then
        if [[ $out == *"Address already in use"* ]]; then return 2; fi
        echo "$out" >&2
        return 1
    fi
    if wait_banner "$IMAP_PORT" '^\* OK' && wait_banner "$LMTP_PORT" '^220 '; then
        return 0
    fi
    echo "Dovecot did not answer on 127.0.0.1:$IMAP_PORT (IMAP) / :$LMTP_PORT (LMTP) within ${WAIT_SECS}s; tail of $D/dovecot.log:" >&2
    tail -n 20 "$D/dovecot.log" >&2 2>/dev/null || true
    return 1
}

start_dovecot() { # ports are fixed (restart)
    if dovecot_running; then return 0; fi
    claim_port "$IMAP_PORT" || die "IMAP_PORT=$IMAP_PORT now belongs to the set-up $(port_owner "$IMAP_PORT")"
    claim_port "$LMTP_PORT" || die "LMTP_PORT=$LMTP_PORT now belongs to the set-up $(port_owner "$LMTP_PORT")"
    write_dovecot_conf
    local rc=0
    start_dovecot_once || rc=$?
    case $rc in
        0) ;;
        2) die "Dovecot cannot bind 127.0.0.1:$IMAP_PORT or :$LMTP_PORT: Address already in use" ;;
        *) die "Dovecot did not start (see $D/dovecot.log and $LOG)" ;;
    esac
}

# ---------------------------------------------------------------- Postfix

pf_map_type() {
    # Berkeley DB "hash" (Debian 12); newer builds may have dropped it.
    if postconf -c "$PC" -m 2>/dev/null | grep -qx hash; then echo hash
    elif postconf -c "$PC" -m 2>/dev/null | grep -qx lmdb; then echo lmdb
    else echo texthash; fi
}

write_postfix_conf() {
    install -d -m 0755 -o root -g root "$PC"
    install -d -m 0755 -o root -g root "$PQ"
    install -d -m 0700 -o postfix -g postfix "$PD"
    [[ -f $PC/vdomains ]] || printf '%s' "$DEFAULT_DOMAINS" >"$PC/vdomains"
    touch "$PC/vmailbox"
    local fault_restr=""
    [[ -f $PC/fault ]] && fault_restr=$(fault_restriction "$(cat "$PC/fault")")
    # main.cf must exist before "postconf -c" can be used (pf_map_type).
    [[ -f $PC/main.cf ]] || { : >"$PC/main.cf"; backdate "$PC/main.cf"; }
    local mt
    mt=$(pf_map_type)
    cat >"$PC/main.cf.tmp" <<EOF
# Generated by $PROG - private Postfix for tests.
compatibility_level = 3.6
config_directory = $PC
queue_directory = $PQ
data_directory = $PD
mail_owner = postfix
setgid_group = postdrop

# No syslog: postlogd (master.cf "postlog") writes this file.
maillog_file = $D/postfix.log
maillog_file_prefixes = $D/, /var, /dev/stdout

myhostname = mail.test.local
mydomain = test.local
myorigin = \$myhostname
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

# All mail for these domains goes to Dovecot over LMTP.
virtual_mailbox_domains = $(cat "$PC/vdomains")
virtual_mailbox_maps = $mt:$PC/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
virtual_alias_maps =
recipient_delimiter = +

# Nothing is delivered locally or relayed to the outside.
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is disabled in this test set-up
relay_transport = error:relaying is disabled in this test set-up
default_transport = error:outbound mail is disabled in this test set-up

# Unknown domain -> 554 Relay access denied; unknown user in a known
# domain -> 550 User unknown in virtual mailbox table (both at RCPT).
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = $fault_restr
smtpd_reject_unlisted_recipient = yes

# No DNS at all.
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no

# Fast for tests: retry deferred mail (e.g. while Dovecot is stopped) quickly.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
in_flow_delay = 0
smtpd_error_sleep_time = 0
message_size_limit = 52428800
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP Postfix (mailintake test)
EOF
    if tls_on; then
        cat >>"$PC/main.cf.tmp" <<EOF
# TLS (DIR/tls/ exists): STARTTLS offered on the SMTP port, implicit TLS on SMTPS_PORT.
smtpd_tls_cert_file = $D/tls/cert.pem
smtpd_tls_key_file = $D/tls/key.pem
smtpd_tls_security_level = may
EOF
    fi
    backdate "$PC/main.cf.tmp"
    mv -f "$PC/main.cf.tmp" "$PC/main.cf"
    cat >"$PC/master.cf.tmp" <<EOF
# Generated by $PROG.  chroot = n everywhere.
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    if tls_on; then
        # tlsmgr: without it smtpd finds "no entropy for TLS key generation" and drops TLS.
        printf '%s\n' "127.0.0.1:$SMTPS_PORT inet n - n - - smtpd -o smtpd_tls_wrappermode=yes" \
            "tlsmgr    unix  -       -       n       1000?   1       tlsmgr" >>"$PC/master.cf.tmp"
    fi
    backdate "$PC/master.cf.tmp"
    mv -f "$PC/master.cf.tmp" "$PC/master.cf"
    postmap_vmailbox
}

postmap_vmailbox() {
    local mt
    mt=$(postconf -c "$PC" -h virtual_mailbox_maps)
    mt=${mt%%:*}
    backdate "$PC/vmailbox"
    if [[ $mt != texthash ]]; then
        postmap -c "$PC" "$mt:$PC/vmailbox" >>"$LOG" 2>&1 || die "postmap $mt:$PC/vmailbox failed (see $LOG)"
    fi
}

postfix_pid() {
    local pid
    pid=$(awk '{ print $1; exit }' "$PQ/pid/master.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$PQ" ]] || return 1
    proc_matches "$pid" master || return 1
    echo "$pid"
}

postfix_running() { postfix_pid >/dev/null; }

stop_postfix() {
    local pid
    # Same as "postfix -c DIR/postfix stop", without its 1 s polling sleep:
    # SIGTERM to the master kills its whole process group.
    if pid=$(postfix_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_pid_gone "$pid" 5000; then
            warn "Postfix master (pid $pid) did not stop on SIGTERM; killing its process group"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait_pid_gone "$pid" 2000 || true
        fi
    fi
    if [[ -n ${SMTP_PORT:-} ]]; then
        wait_port_free "$SMTP_PORT" 3000 || warn "port $SMTP_PORT still in use after stopping Postfix"
    fi
}

# start_postfix_once: 0 = running, 1 = failed, 2 = SMTP port taken (retryable)
start_postfix_once() {
    local out rc=0
    postfix -c "$PC" start </dev/null >"$D/.start.out" 2>&1 9>&- || rc=$?
    out=$(cat "$D/.start.out")
    if ((rc != 0)); then
        echo "$out" >>"$LOG"
        if [[ $out == *"Address already in use"* ]] ||
            tail -n 5 "$D/postfix.log" 2>/dev/null | grep -q "Address already in use"; then
            return 2
        fi
        echo "$out" >&2
        tail -n 20 "$D/postfix.log" >&2 2>/dev/null || true
        return 1
    fi
    echo "$out" >>"$LOG"
    if wait_banner "$SMTP_PORT" '^220 '; then return 0; fi
    echo "Postfix did not answer on 127.0.0.1:$SMTP_PORT within ${WAIT_SECS}s; tail of $D/postfix.log:" >&2
    tail -n 20 "$D/postfix.log" >&2 2>/dev/null || true
    return 1
}

start_postfix() { # ports are fixed (restart)
    if postfix_running; then return 0; fi
    claim_port "$SMTP_PORT" || die "SMTP_PORT=$SMTP_PORT now belongs to the set-up $(port_owner "$SMTP_PORT")"
    # Postfix uses SO_REUSEPORT: it would share the port with another listener
    # instead of failing.
    ! port_listening "$SMTP_PORT" || die "something else listens on 127.0.0.1:$SMTP_PORT; cannot restart Postfix on it"
    write_postfix_conf
    local rc=0
    start_postfix_once || rc=$?
    case $rc in
        0) ;;
        2) die "Postfix cannot bind 127.0.0.1:$SMTP_PORT: Address already in use" ;;
        *) die "Postfix did not start (see $D/postfix.log and $LOG)" ;;
    esac
}

flush_postfix_queue() {
    postfix_running || return 0
    postqueue -c "$PC" -f >>"$LOG" 2>&1 9>&- || true
}

# Reload Postfix after a configuration change and wait until new SMTP
# sessions see it (RCPT to $2 answers a code matching $1).
reload_postfix_and_wait() {
    local re=$1 rcpt=${2:-$PROBE_RCPT}
    postfix_running || return 0
    postfix -c "$PC" reload >>"$LOG" 2>&1 9>&- || die "postfix reload failed (see $LOG)"
    wait_rcpt "$SMTP_PORT" "$rcpt" "$re" ||
        die "after 'postfix reload' RCPT TO:<$rcpt> still does not answer $re (got '$(smtp_rcpt_code "$SMTP_PORT" "$rcpt" || true)')"
}

fault_restriction() {
    case $1 in
        4xx) echo 'check_recipient_access static:{451 4.3.0 Temporary failure injected by mailservers.sh smtp-fault 4xx}' ;;
        5xx) echo 'check_recipient_access static:{550 5.7.1 Permanent failure injected by mailservers.sh smtp-fault 5xx}' ;;
        off | "") echo '' ;;
        *) die "smtp-fault mode must be 4xx, 5xx or off (got '$1')" ;;
    esac
}

# ---------------------------------------------------------------- checks

preflight() {
    ((EUID == 0)) || die "must run as root (Postfix and Dovecot drop privileges to postfix/mail/dovenull)"
    local c
    for c in dovecot doveadm postfix postconf postmap postqueue flock awk; do
        command -v "$c" >/dev/null || die "'$c' not found (apt-get install dovecot-core dovecot-imapd dovecot-lmtpd postfix)"
    done
    [[ -x /usr/lib/dovecot/imap ]] || die "dovecot-imapd is not installed"
    [[ -x /usr/lib/dovecot/lmtp ]] || die "dovecot-lmtpd is not installed"
    for c in mail dovecot dovenull postfix; do
        getent passwd "$c" >/dev/null || die "system user '$c' is missing (are the Debian packages installed?)"
    done
    getent group postdrop >/dev/null || die "group 'postdrop' is missing"
}

# The unprivileged users (postfix, mail, dovenull) must be able to walk down
# to DIR: check every parent directory for o+x.
check_traversable() {
    local p=$D
    while [[ $p != / && -n $p ]]; do
        p=$(dirname "$p")
        if [[ -d $p ]] && ! other_can_search "$p"; then
            die "parent directory $p is not searchable by other users (mode $(stat -c %a "$p")); Postfix/Dovecot processes running as postfix/mail/dovenull could not reach $D. Use a DIR under /tmp (e.g. mktemp -d) or chmod o+x $p"
        fi
    done
}
other_can_search() { # other-execute bit set?
    local m
    m=$(stat -c %a "$1")
    (( (8#$m & 1) == 1 ))
}

# ------------------------------------------------------------- commands

cmd_start() {
    set_paths "${1:-}"
    preflight
    # Dovecot's unix sockets live under DIR/run/ (up to ~30 more characters)
    # and a socket path must fit in 107 bytes.
    ((${#D} <= 70)) || die "DIR path is too long (${#D} > 70 characters) for Dovecot's unix sockets: $D"
    check_traversable
    mkdir -p "$D"
    chmod 0755 "$D"
    lock_dir

    if dovecot_running || postfix_running; then
        die "$D: servers are already running (use '$PROG stop $D' first)"
    fi
    gc_port_claims
    # A failed start stops whatever it already started (e.g. Dovecot when
    # Postfix then fails), and a failed first start gives its port claims back.
    local had_env=0
    [[ -f $ENVF ]] && had_env=1
    START_HAD_ENV=$had_env
    trap 'start_failed $?' EXIT

    local fixed_imap=${IMAP_PORT:-} fixed_smtp=${SMTP_PORT:-} fixed_lmtp=${LMTP_PORT:-} env_pw=${MS_PASSWORD:-}
    IMAP_PORT='' SMTP_PORT='' LMTP_PORT='' MS_PASSWORD='' IMAPS_PORT='' SMTPS_PORT=''
    if [[ -f $ENVF ]]; then load_env; fi   # restart of an existing set-up: same ports, same password
    [[ -n $fixed_imap ]] && IMAP_PORT=$fixed_imap
    [[ -n $fixed_smtp ]] && SMTP_PORT=$fixed_smtp
    [[ -n $fixed_lmtp ]] && LMTP_PORT=$fixed_lmtp
    [[ -n $env_pw ]] && MS_PASSWORD=$env_pw
    [[ -n $MS_PASSWORD ]] || MS_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    [[ $MS_PASSWORD =~ ^[A-Za-z0-9._-]+$ ]] || die "MS_PASSWORD may only contain [A-Za-z0-9._-]"
    local p
    for p in ${fixed_imap:+IMAP_PORT} ${fixed_smtp:+SMTP_PORT} ${fixed_lmtp:+LMTP_PORT}; do
        [[ ${!p} =~ ^[0-9]+$ ]] && ((${!p} >= 1024 && ${!p} <= 65535)) || die "$p must be an unprivileged port number (got '${!p}')"
    done

    # Data.  Re-running "start" on a stopped set-up keeps users and mail.
    install -d -m 0755 "$DC"
    install -d -m 0755 -o mail -g mail "$MAIL"
    [[ -f $DC/users ]] || : >"$DC/users"
    chown root:dovecot "$DC/users"
    chmod 0640 "$DC/users"
    install -d -m 0755 "$PC"
    [[ -f $PC/vdomains ]] || printf '%s' "$DEFAULT_DOMAINS" >"$PC/vdomains"
    local u
    for u in "${DEFAULT_USERS[@]}"; do add_user_files "$u" || true; done
    : >>"$D/dovecot.log"
    : >>"$D/postfix.log"

    if tls_on; then
        use_port IMAPS_PORT 0 "${IMAP_PORT:-}" "${SMTP_PORT:-}" "${LMTP_PORT:-}"
        use_port SMTPS_PORT 0 "$IMAPS_PORT" "${IMAP_PORT:-}" "${SMTP_PORT:-}" "${LMTP_PORT:-}"
    fi
    # Dovecot first (Postfix needs the LMTP port).  If a port was taken by
    # another program between our check and the bind, pick a new one.
    local attempt rc fp pin_imap=0 pin_lmtp=0 pin_smtp=0
    [[ -n $fixed_imap ]] && pin_imap=1
    [[ -n $fixed_lmtp ]] && pin_lmtp=1
    [[ -n $fixed_smtp ]] && pin_smtp=1
    for attempt in 1 2 3 4 5 6; do
        use_port IMAP_PORT $pin_imap "${SMTP_PORT:-}" "${LMTP_PORT:-}"
        use_port LMTP_PORT $pin_lmtp "$IMAP_PORT" "${SMTP_PORT:-}"
        write_dovecot_conf
        rc=0
        start_dovecot_once || rc=$?
        ((rc == 0)) && break
        ((rc == 2)) || die "Dovecot did not start (see $D/dovecot.log and $LOG)"
        IMAP_PORT='' LMTP_PORT='' stop_dovecot
        fp=$(sed -n 's/.*listen(127\.0\.0\.1, \([0-9]*\)) failed.*/\1/p' "$D/.start.out" | head -n1)
        ((attempt < 6)) || die "Dovecot cannot bind 127.0.0.1:$IMAP_PORT / :$LMTP_PORT: Address already in use"
        if [[ $fp == "$IMAP_PORT" ]]; then
            ((pin_imap == 0)) || die "IMAP_PORT=$IMAP_PORT: Address already in use"
            release_port "$IMAP_PORT"; IMAP_PORT=''
        elif [[ $fp == "$LMTP_PORT" ]]; then
            ((pin_lmtp == 0)) || die "LMTP_PORT=$LMTP_PORT: Address already in use"
            release_port "$LMTP_PORT"; LMTP_PORT=''
        else
            die "Dovecot cannot bind: $(cat "$D/.start.out")"
        fi
    done
    for attempt in 1 2 3 4 5 6; do
        use_port SMTP_PORT $pin_smtp "$IMAP_PORT" "$LMTP_PORT"
        write_postfix_conf
        rc=0
        start_postfix_once || rc=$?
        ((rc == 0)) && break
        SMTP_PORT='' stop_postfix
        if ((rc != 2)); then
            stop_dovecot
            die "Postfix did not start (see $D/postfix.log and $LOG)"
        fi
        if ((pin_smtp == 1 || attempt == 6)); then
            stop_dovecot
            die "Postfix cannot bind 127.0.0.1:$SMTP_PORT: Address already in use"
        fi
        release_port "$SMTP_PORT"; SMTP_PORT=''
    done
    write_env
    trap - EXIT
    cat "$ENVF"
}

start_failed() {
    (($1 != 0)) || return 0
    trap - EXIT
    SMTP_PORT='' stop_postfix || true
    IMAP_PORT='' LMTP_PORT='' stop_dovecot || true
    if ((START_HAD_ENV == 0)); then
        rm -f "$ENVF"
        release_all_ports
    fi
    exit "$1"
}

# Common preamble of the commands that act on an existing set-up.
open_setup() {
    set_paths "${1:-}"
    preflight
    load_env
    lock_dir
}

cmd_stop() {
    set_paths "${1:-}"
    ((EUID == 0)) || die "must run as root"
    [[ -d $D ]] || return 0
    IMAP_PORT='' SMTP_PORT='' LMTP_PORT=''
    [[ -f $ENVF ]] && load_env
    [[ -f $D/.lock ]] && lock_dir
    stop_postfix
    stop_dovecot
    return 0
}

cmd_destroy() {
    cmd_stop "$@"
    [[ -d $D ]] || return 0
    release_all_ports
    rm -rf "$D"
}

cmd_stop_imap() { open_setup "$@"; stop_dovecot; }
cmd_start_imap() { open_setup "$@"; start_dovecot; flush_postfix_queue; }
cmd_restart_imap() { open_setup "$@"; stop_dovecot; start_dovecot; flush_postfix_queue; }
cmd_kill_imap() { open_setup "$@"; stop_dovecot KILL; }
cmd_stop_smtp() { open_setup "$@"; stop_postfix; }
cmd_start_smtp() { open_setup "$@"; start_postfix; }
cmd_restart_smtp() { open_setup "$@"; stop_postfix; start_postfix; }

cmd_adduser() {
    local addr
    [[ -n ${2:-} ]] || usage
    addr=$(normalize_address "$2")
    open_setup "$1"
    local dom=${addr#*@} domains_before
    domains_before=$(cat "$PC/vdomains")
    if add_user_files "$addr"; then
        postmap_vmailbox
        if [[ $domains_before != "$(cat "$PC/vdomains")" ]]; then
            postconf -c "$PC" -e "virtual_mailbox_domains = $(cat "$PC/vdomains")"
            backdate "$PC/main.cf"
        fi
        # Dovecot re-reads the passwd-file by itself, but checks its mtime at
        # most once a second: a delivery right after adduser could get "550
        # unknown user" from LMTP (and bounce).  Wait until the auth process
        # knows the user (userdb for LMTP, passdb for IMAP LOGIN).
        if dovecot_running; then
            wait_dovecot_user "$addr" || die "Dovecot does not know $addr after ${WAIT_SECS}s"
        fi
        # Postfix daemons must be restarted to see the new map / domain.
        reload_postfix_and_wait '^250$' "$addr"
    fi
    echo "$addr"
}

cmd_smtp_fault() {
    local mode=${2:-} restr re
    [[ -n $mode ]] || usage
    restr=$(fault_restriction "$mode")
    open_setup "$1"
    case $mode in
        4xx) re='^4' ;;
        5xx) re='^5' ;;
        off) re='^250$' ;;
    esac
    if [[ $mode == off ]]; then rm -f "$PC/fault"; else echo "$mode" >"$PC/fault"; fi
    postconf -c "$PC" -e "smtpd_recipient_restrictions = $restr"
    backdate "$PC/main.cf"
    if postfix_running; then
        reload_postfix_and_wait "$re"
    fi
    echo "smtp-fault $mode"
}

cmd_status() {
    set_paths "${1:-}"
    [[ -f $ENVF ]] || { echo "no set-up in $D"; return 1; }
    load_env
    local rc=0 pid
    if pid=$(dovecot_pid); then echo "dovecot: running (pid $pid) imap 127.0.0.1:$IMAP_PORT lmtp 127.0.0.1:$LMTP_PORT"; else echo "dovecot: stopped"; rc=1; fi
    if pid=$(postfix_pid); then echo "postfix: running (pid $pid) smtp 127.0.0.1:$SMTP_PORT"; else echo "postfix: stopped"; rc=1; fi
    echo "smtp-fault: $(cat "$PC/fault" 2>/dev/null || echo off)"
    return $rc
}

cmd_env() {
    set_paths "${1:-}"
    [[ -f $ENVF ]] || die "no set-up in $D"
    cat "$ENVF"
}

main() {
    local cmd=${1:-}
    [[ -n $cmd ]] || usage
    shift
    case $cmd in
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        destroy) cmd_destroy "$@" ;;
        stop-imap) cmd_stop_imap "$@" ;;
        start-imap) cmd_start_imap "$@" ;;
        restart-imap) cmd_restart_imap "$@" ;;
        kill-imap) cmd_kill_imap "$@" ;;
        stop-smtp) cmd_stop_smtp "$@" ;;
        start-smtp) cmd_start_smtp "$@" ;;
        restart-smtp) cmd_restart_smtp "$@" ;;
        adduser) cmd_adduser "$@" ;;
        smtp-fault) cmd_smtp_fault "$@" ;;
        status) cmd_status "$@" ;;
        env) cmd_env "$@" ;;
        -h | --help | help) usage ;;
        *) echo "$PROG: unknown command '$cmd'" >&2; usage ;;
    esac
}

main "$@"
