#!/usr/bin/env bash
# Builds the Debian package with cargo-deb. What goes in is declared in Cargo.toml
# ([package.metadata.deb]): the binary, the units in systemd/, /etc/mailintake/mailintake.toml
# (from mailintake.example.toml) and the rules as conffiles, the maintainer scripts in debian/.
#
#   bash scripts/package.sh              release build → target/debian/mailintake_VERSION-1_ARCH.deb
#   bash scripts/package.sh --test DIR   packs the debug binary `cargo test` already built, with fast
#                                        compression, into DIR (for tests/package.rs: no second build)
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest cargo-deb, checked to build on rustc 1.95 (about 2.5 min on 2 cores).
CARGO_DEB_VERSION=3.8.0
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "== installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

case "${1:-}" in
    --test)
        out=${2:?usage: package.sh --test DIR}
        # --quiet: cargo-deb warns that a dev-profile package is not for release; this one is not.
        cargo deb --profile dev --no-build --fast --quiet -o "$out"
        ;;
    "")
        # [profile.release] keeps line debug info for backtraces; the packaged binary is stripped.
        cargo deb --locked --strip
        ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac
