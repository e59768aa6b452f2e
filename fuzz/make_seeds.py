#!/usr/bin/env python3
"""Rebuild fuzz/seeds/{verdict,form,archive}/ from fixtures/ (Python 3 standard library only).

    python3 fuzz/make_seeds.py          # rewrite the seed folders
    python3 fuzz/make_seeds.py --check  # fail if the folders differ from what would be written

Seeds are committed; they start the fuzzers (scripts/fuzz.sh copies them into fuzz/corpus/) and
tests/fuzz_corpus.rs replays them on every `cargo test`. Output is deterministic: files are named
after the fixture they come from, so a regeneration after fixture changes diffs cleanly.

- verdict/: every fixtures/**/*.eml under 64 KiB, byte for byte (`<group>__<name>.eml`).
- form/:    the text bodies of the fixtures (text/plain parts, and text/html parts of mails
            without one), decoded to UTF-8, deduplicated, under 16 KiB, at most FORM_MAX files.
- archive/: attachment parts under 64 KiB of fixtures/archives/*.eml, plus a few images and
            office files of other fixtures; the first byte of each seed picks the file name the
            `archive` target gives it (0 x.zip, 1 x.7z, 2 x.rar, 3 x.png, 4 x.docx), the rest is
            the attachment's bytes.
"""

import email
import email.policy
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEEDS = ROOT / "fuzz" / "seeds"

EML_MAX = 64 * 1024
PART_MAX = 64 * 1024
TEXT_MAX = 16 * 1024
FORM_MAX = 96
# Images and office files from outside fixtures/archives: a handful is enough.
EXTRA_MAX = 12
# The `archive` target's names, indexed by the first byte of the input (modulo their count).
NAMES = ["x.zip", "x.7z", "x.rar", "x.png", "x.docx"]


def fixture_files():
    return sorted(p for p in FIXTURES.rglob("*.eml") if p.is_file())


def seed_name(path: Path, suffix: str) -> str:
    rel = path.relative_to(FIXTURES).with_suffix("")
    return "__".join(rel.parts) + suffix


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def leaves(msg):
    for part in msg.walk():
        if not part.is_multipart():
            yield part


def decoded_text(part):
    try:
        text = part.get_content()
    except Exception:  # unknown charset, broken transfer encoding: fall back to bytes
        data = part.get_payload(decode=True) or b""
        text = data.decode("utf-8", "replace")
    return text if isinstance(text, str) else None


def selector(name: str, data: bytes):
    """The first byte of an archive seed, or None for content the target has no name for."""
    lower = name.lower()
    if data.startswith(b"PK\x03\x04"):
        if lower.endswith((".docx", ".xlsx", ".odt", ".ods", ".pptx")):
            return NAMES.index("x.docx")
        return NAMES.index("x.zip")
    if data.startswith(b"7z\xbc\xaf\x27\x1c"):
        return NAMES.index("x.7z")
    if data.startswith(b"Rar!\x1a\x07"):
        return NAMES.index("x.rar")
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return NAMES.index("x.png")
    return None


def build():
    """Every seed file: {relative path under fuzz/seeds: bytes}."""
    out = {}
    form_texts = {}
    archives = []
    extras = []
    for path in fixture_files():
        raw = path.read_bytes()
        if len(raw) < EML_MAX:
            out[f"verdict/{seed_name(path, '.eml')}"] = raw
        if len(raw) > 1 << 20:
            continue  # the 10 MiB size-limit fixtures: nothing small inside
        msg = parse(raw)
        parts = list(leaves(msg))
        plain = [p for p in parts if p.get_content_type() == "text/plain" and not p.get_filename()]
        html = [p for p in parts if p.get_content_type() == "text/html" and not p.get_filename()]
        for i, part in enumerate(plain or html):
            text = decoded_text(part)
            if not text or not text.strip():
                continue
            data = text.encode("utf-8")
            if len(data) >= TEXT_MAX:
                continue
            digest = hashlib.sha1(data).hexdigest()
            suffix = ".txt" if part.get_content_type() == "text/plain" else ".html.txt"
            name = seed_name(path, suffix if i == 0 else f".{i}{suffix}")
            form_texts.setdefault(digest, (name, data))
        for part in parts:
            fname = part.get_filename()
            if not fname:
                continue
            data = part.get_payload(decode=True) or b""
            if not data or len(data) >= PART_MAX:
                continue
            sel = selector(fname, data)
            if sel is None:
                continue
            item = (seed_name(path, ""), sel, data)
            if path.parent.name == "archives":
                archives.append(item)
            else:
                extras.append(item)

    # Form texts: spread over the fixture groups rather than the first FORM_MAX by name.
    texts = sorted(form_texts.values())
    if len(texts) > FORM_MAX:
        step = len(texts) / FORM_MAX
        texts = [texts[int(i * step)] for i in range(FORM_MAX)]
    for name, data in texts:
        out[f"form/{name}"] = data

    seen = set()
    # The extras: each kind of name at most EXTRA_MAX // 2 times, archives listed first.
    per_sel = {}
    picked = list(archives)
    for item in extras:
        n = per_sel.get(item[1], 0)
        if n < EXTRA_MAX // 2 and sum(per_sel.values()) < EXTRA_MAX:
            per_sel[item[1]] = n + 1
            picked.append(item)
    counters = {}
    for base, sel, data in picked:
        blob = bytes([sel]) + data
        digest = hashlib.sha1(blob).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        ext = NAMES[sel].split(".", 1)[1]
        k = counters.get(base, 0)
        counters[base] = k + 1
        out[f"archive/{base}.{k}.{ext}"] = blob
    return out


def main():
    check = "--check" in sys.argv[1:]
    want = build()
    have = {
        str(p.relative_to(SEEDS)): p.read_bytes()
        for sub in ("verdict", "form", "archive")
        if (SEEDS / sub).is_dir()
        for p in sorted((SEEDS / sub).iterdir())
        if p.is_file()
    }
    if check:
        if want != have:
            extra = sorted(set(have) - set(want))
            missing = sorted(set(want) - set(have))
            changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])
            for label, names in (("stale", extra), ("missing", missing), ("changed", changed)):
                for n in names:
                    print(f"{label}: fuzz/seeds/{n}")
            sys.exit(1)
        print(f"fuzz/seeds up to date ({len(want)} files)")
        return
    for stale in set(have) - set(want):
        (SEEDS / stale).unlink()
    for rel, data in sorted(want.items()):
        dest = SEEDS / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if have.get(rel) != data:
            dest.write_bytes(data)
    for sub in ("verdict", "form", "archive"):
        files = [k for k in want if k.startswith(sub + "/")]
        size = sum(len(want[k]) for k in files)
        print(f"fuzz/seeds/{sub}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
