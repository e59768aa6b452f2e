//! `engine::evaluate` on arbitrary bytes as a raw mail, with the shipped rules (`rules/`).

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailintake::verdict::engine;
use mailintake::verdict::rules::RuleSet;

mod harness;

static RULES: OnceLock<RuleSet> = OnceLock::new();

fuzz_target!(
    init: {
        harness::install_panic_hook();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        let rules = RuleSet::load(&dir)
            .unwrap_or_else(|e| panic!("rules in {} do not load: {e}", dir.display()));
        let _ = RULES.set(rules);
    },
    |data: &[u8]| {
        let rules = RULES.get().expect("rules are loaded in init");
        harness::run(|| engine::evaluate(data, rules));
    }
);
