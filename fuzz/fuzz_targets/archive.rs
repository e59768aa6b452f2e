//! `attach::inspect` on arbitrary bytes as one attachment, with the shipped attachment rules.
//!
//! The first byte picks the file name (modulo 5: `x.zip`, `x.7z`, `x.rar`, `x.png`, `x.docx`);
//! the rest is the file's content. tests/fuzz_corpus.rs reads the inputs the same way.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailintake::verdict::attach::{self, AttachmentRules};

mod harness;

const NAMES: [&str; 5] = ["x.zip", "x.7z", "x.rar", "x.png", "x.docx"];

static RULES: OnceLock<AttachmentRules> = OnceLock::new();

fuzz_target!(
    init: {
        harness::install_panic_hook();
        let _ = RULES.set(AttachmentRules::shipped());
    },
    |data: &[u8]| {
        let Some((&pick, content)) = data.split_first() else {
            return;
        };
        let rules = RULES.get().expect("rules are loaded in init");
        let name = NAMES[usize::from(pick) % NAMES.len()];
        harness::run(|| attach::inspect(name, "application/octet-stream", content, rules));
    }
);
