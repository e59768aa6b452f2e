#!/usr/bin/env bash
# Installs a mailintake .deb into a clean Debian 12 chroot (debootstrap, minbase) and checks it the
# way an administrator would meet it: dpkg/apt install with its dependencies, the system user, the
# password files and folders postinst makes, the conffiles, the daemon running as its user from
# the packaged config (it retries the unreachable placeholder server; no network is used for
# that, the chroot has no resolver), an online backup as that user, `sha256sum -c`, a restore as
# root that hands the files back to the user, purge. Not part of scripts/test.sh: debootstrap
# downloads ~100 packages (about 2 min); run it by hand after changing the packaging.
#
#   bash scripts/package-chroot-test.sh DEB [CHROOT_DIR]     (root; default CHROOT_DIR: a new temp dir)
set -euo pipefail
deb=$(realpath "${1:?usage: package-chroot-test.sh DEB [CHROOT_DIR]}")
C=${2:-$(mktemp -d /tmp/mailintake-chroot.XXXXXX)}
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
if [ ! -x "$C/usr/bin/apt-get" ]; then
    echo "== debootstrap bookworm into $C"
    debootstrap --variant=minbase bookworm "$C" http://deb.debian.org/debian >/dev/null
fi
cp "$deb" "$C/root/mailintake.deb"
inside() { chroot "$C" sh -ec "$1"; }
echo "== apt-get install ./mailintake.deb"
cp /etc/resolv.conf "$C/etc/resolv.conf"
inside 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/mailintake.deb >/dev/null'
rm -f "$C/etc/resolv.conf"   # from here on, nothing in the chroot can resolve a name
echo "== what postinst made"
inside 'getent passwd mailintake
    test "$(stat -c %U:%a /var/lib/mailintake)" = mailintake:700
    test "$(stat -c %U:%a /var/backups/mailintake)" = mailintake:700
    test "$(stat -c %U:%a /etc/mailintake/imap.pass)" = root:600
    grep -qx /etc/mailintake/mailintake.toml /var/lib/dpkg/info/mailintake.conffiles
    mailintake --version
    runuser -u mailintake -- mailintake rules check --rules /etc/mailintake/rules'
echo "== the daemon as its user, with the credentials systemd would hand it"
inside 'mkdir -p /run/credentials/mailintake.service
    echo x >/run/credentials/mailintake.service/imap; echo x >/run/credentials/mailintake.service/smtp
    chmod 0444 /run/credentials/mailintake.service/*
    rc=0; timeout 4 runuser -u mailintake -- mailintake run --config /etc/mailintake/mailintake.toml 2>/tmp/run.log || rc=$?
    test $rc = 124 || { cat /tmp/run.log; exit 1; }
    grep -q "IMAP connect failed" /tmp/run.log
    test -f /var/lib/mailintake/mailintake.db'
echo "== backup as the user, restore as root"
inside 'runuser -u mailintake -- mailintake backup --config /etc/mailintake/mailintake.toml --keep 14 /var/backups/mailintake
    (cd /var/backups/mailintake && sha256sum -c --quiet ./*.sha256)
    latest=$(ls /var/backups/mailintake/mailintake-*.db | tail -n 1)
    mailintake restore --config /etc/mailintake/mailintake.toml "$latest"
    test "$(stat -c %U /var/lib/mailintake/mailintake.db)" = mailintake
    runuser -u mailintake -- mailintake tickets --config /etc/mailintake/mailintake.toml >/dev/null'
echo "== reinstall (an upgrade's maintainer-script path), then purge"
inside 'dpkg -i /root/mailintake.deb >/dev/null
    dpkg --purge mailintake >/dev/null
    test ! -e /etc/mailintake/imap.pass
    test -e /var/lib/mailintake/mailintake.db'
echo "package-chroot-test: OK ($C)"
