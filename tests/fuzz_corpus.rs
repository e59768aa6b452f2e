//! Replays the fuzzers' committed inputs on plain `cargo test` (stable, no fuzzer): every file in
//! `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/` goes through the function its target
//! fuzzes, and none may panic. The crash inputs that `scripts/fuzz.sh` keeps in
//! `fuzz/regressions/` so stay fixed.
//!
//! - `verdict`: the bytes as a raw mail, `engine::evaluate` with the rules in `rules/`;
//! - `form`: the bytes as lossy UTF-8, `form::parse_form` with `FormRules::builtin()`;
//! - `archive`: the first byte picks the name (`x.zip`, `x.7z`, `x.rar`, `x.png`, `x.docx`, modulo
//!   5), the rest is the content, `attach::inspect` with `AttachmentRules::shipped()`;
//! - `auth`: the bytes as a raw mail, the trusted `Authentication-Results` reader and mail-auth
//!   verification against a fixed zone, each result judged by the engine.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use mailintake::verdict::attach::{self, AttachmentRules};
use mailintake::verdict::engine;
use mailintake::verdict::form::{self, FormRules};
use mailintake::verdict::rules::RuleSet;

/// The names of fuzz/fuzz_targets/archive.rs, in its order.
const NAMES: [&str; 5] = ["x.zip", "x.7z", "x.rar", "x.png", "x.docx"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/{seeds,regressions}/<target>/`, sorted; a missing folder is empty.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = root().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if p.is_file() && !hidden {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Run `f` on every input of `target`; returns how many ran, and fails naming every input that
/// panicked.
fn replay(target: &str, f: &dyn Fn(&[u8])) -> usize {
    let files = inputs(target);
    let mut panicked = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            panicked.push(path.display().to_string());
        }
    }
    assert!(
        panicked.is_empty(),
        "{target}: {} of {} inputs panicked:\n  {}",
        panicked.len(),
        files.len(),
        panicked.join("\n  ")
    );
    eprintln!("fuzz corpus: {target}: {} inputs ran", files.len());
    files.len()
}

#[test]
fn verdict_inputs_get_a_verdict() {
    let rules = RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let n = replay("verdict", &|data| {
        let _ = engine::evaluate(data, &rules);
    });
    assert!(n > 0, "no seeds in fuzz/seeds/verdict");
}

#[test]
fn form_inputs_parse() {
    let rules = FormRules::builtin().unwrap();
    let n = replay("form", &|data| {
        let _ = form::parse_form(&String::from_utf8_lossy(data), &rules);
    });
    assert!(n > 0, "no seeds in fuzz/seeds/form");
}

#[test]
fn archive_inputs_are_inspected() {
    let rules = AttachmentRules::shipped();
    let n = replay("archive", &|data| {
        if let Some((&pick, content)) = data.split_first() {
            let name = NAMES[usize::from(pick) % NAMES.len()];
            let _ = attach::inspect(name, "application/octet-stream", content, &rules);
        }
    });
    assert!(n > 0, "no seeds in fuzz/seeds/archive");
}

#[test]
fn auth_inputs_get_a_verdict() {
    use mailintake::mail::auth::{AuthSettings, ResolverAddr, Verifier, Zone};
    use mailintake::verdict::auth::{self, AuthMode, AuthPolicy, SenderAuth};
    const MTA: &str = "mx.sevmiac.ru";
    let rules = RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    // The zone of fuzz/fuzz_targets/auth.rs.
    let zone = "sev.gov.ru TXT \"v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.1 mx a:out.sev.gov.ru -all\"\n\
        _dmarc.sev.gov.ru TXT \"v=DMARC1; p=reject\"\n\
        mail._domainkey.sev.gov.ru TXT \"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n\
        sev.gov.ru MX 10 out.sev.gov.ru\n\
        out.sev.gov.ru A 192.0.2.1\n";
    let verifier = Verifier::new(AuthSettings {
        mode: AuthMode::Verify,
        authserv_id: MTA.into(),
        mta_host: MTA.into(),
        resolver: ResolverAddr::System,
        timeout: std::time::Duration::from_secs(1),
        zone: Some(Zone::parse(zone).unwrap()),
    })
    .unwrap();
    let policy = AuthPolicy::default();
    let n = replay("auth", &|data| {
        let header = auth::trusted_results(data, MTA, MTA);
        let _ = engine::evaluate_authenticated(
            data,
            &rules,
            true,
            Some(&SenderAuth {
                result: header,
                policy,
            }),
        );
        let verified = verifier.verify(data, false);
        let _ = engine::evaluate_authenticated(
            data,
            &rules,
            true,
            Some(&SenderAuth {
                result: verified,
                policy,
            }),
        );
    });
    assert!(n > 0, "no seeds in fuzz/seeds/auth");
}
