//! `form::parse_form` on arbitrary text (bytes read as lossy UTF-8) with the built-in form rules.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailintake::verdict::form::{self, FormRules};

mod harness;

static RULES: OnceLock<FormRules> = OnceLock::new();

fuzz_target!(
    init: {
        harness::install_panic_hook();
        let rules = FormRules::builtin()
            .unwrap_or_else(|e| panic!("the built-in form rules do not compile: {e}"));
        let _ = RULES.set(rules);
    },
    |data: &[u8]| {
        let rules = RULES.get().expect("rules are built in init");
        let text = String::from_utf8_lossy(data);
        harness::run(|| form::parse_form(&text, rules));
    }
);
