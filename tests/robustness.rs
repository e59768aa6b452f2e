//! Never panics, whatever the bytes: every fixture truncated at many lengths and garbled in many
//! places still gets a verdict.

use std::path::{Path, PathBuf};

use mailintake::verdict::engine::evaluate;
use mailintake::verdict::rules::RuleSet;

fn fixtures() -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out)
            } else if p.extension().is_some_and(|e| e == "eml") {
                out.push(p)
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut out,
    );
    out.sort();
    out
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_garbled_fixtures_get_a_verdict() {
    let rules = RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut judged = 0usize;
    for path in fixtures() {
        let raw = std::fs::read(&path).unwrap();
        // Big fixtures (the 10 MiB boundary) are cut coarsely to keep the test quick.
        let cuts = if raw.len() > 1 << 20 { 6 } else { 24 };
        for i in 1..=cuts {
            let n = raw.len() * i / (cuts + 1);
            let _ = evaluate(&raw[..n], &rules);
            judged += 1;
        }
        if raw.len() <= 1 << 20 {
            for _ in 0..12 {
                let mut g = raw.clone();
                for _ in 0..8 {
                    let at = (rng.next() as usize) % g.len().max(1);
                    if let Some(b) = g.get_mut(at) {
                        *b = rng.next() as u8;
                    }
                }
                let _ = evaluate(&g, &rules);
                judged += 1;
            }
        }
    }
    for junk in [
        &b""[..],
        b"\0\0\0",
        b"From:\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
    ] {
        let _ = evaluate(junk, &rules);
        judged += 1;
    }
    eprintln!("robustness: {judged} broken mails judged");
    assert!(judged > 1000, "only {judged} mails judged");
}
