//! Golden fixtures: every `fixtures/<group>/<name>.eml` is judged and compared with
//! `<name>.expected.json` beside it. The expected file is a subset of the verdict: keys it names
//! must match (recursively); arrays must have the same length and match as a multiset. On a
//! mismatch `<name>.actual.json` is written beside it and the test fails; it also asserts how many
//! fixtures ran, so an empty or misplaced folder cannot pass.

use std::path::{Path, PathBuf};

use mailintake::verdict::engine::evaluate;
use mailintake::verdict::rules::RuleSet;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "eml") {
            out.push(p);
        }
    }
}

/// `expected ⊆ actual`; on failure, the path of the first difference.
fn subset(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .ok_or_else(|| format!("{path}.{k}: missing in actual"))?;
                subset(ev, av, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} elements, got {}",
                    e.len(),
                    a.len()
                ));
            }
            let mut used = vec![false; a.len()];
            for (i, ev) in e.iter().enumerate() {
                let found = a
                    .iter()
                    .enumerate()
                    .find(|(j, av)| !used[*j] && subset(ev, av, "").is_ok())
                    .map(|(j, _)| j);
                match found {
                    Some(j) => used[j] = true,
                    None => return Err(format!("{path}[{i}]: no match for {ev}")),
                }
            }
            Ok(())
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

#[test]
fn fixtures_match_expected_verdicts() {
    let rules = RuleSet::load(&root().join("rules")).expect("shipped rules load");
    let mut files = Vec::new();
    collect(&root().join("fixtures"), &mut files);
    let mut failures = Vec::new();
    let mut ran = 0;
    for eml in &files {
        let expected_path = eml.with_extension("expected.json");
        let actual_path = eml.with_extension("actual.json");
        let raw = std::fs::read(eml).unwrap();
        let verdict = evaluate(&raw, &rules);
        let actual = serde_json::to_value(&verdict).unwrap();
        let Ok(text) = std::fs::read_to_string(&expected_path) else {
            failures.push(format!("{}: no expected file", eml.display()));
            continue;
        };
        let expected: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        ran += 1;
        match subset(&expected, &actual, "") {
            Ok(()) => {
                let _ = std::fs::remove_file(&actual_path);
            }
            Err(diff) => {
                std::fs::write(&actual_path, serde_json::to_string_pretty(&actual).unwrap())
                    .unwrap();
                failures.push(format!("{}: {diff}", eml.display()));
            }
        }
    }
    eprintln!("golden: {ran} fixtures ran, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {ran} fixtures differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran >= 80, "only {ran} fixtures ran; expected at least 80");
}

#[test]
fn subset_semantics() {
    let a: Value =
        serde_json::json!({"d": "x", "r": [{"code": "a", "detail": "1"}, {"code": "b"}]});
    assert!(subset(
        &serde_json::json!({"r": [{"code": "b"}, {"code": "a"}]}),
        &a,
        ""
    )
    .is_ok());
    assert!(subset(&serde_json::json!({"r": [{"code": "b"}]}), &a, "").is_err());
    assert!(subset(&serde_json::json!({"d": "y"}), &a, "").is_err());
    assert!(subset(&serde_json::json!({"z": null}), &a, "").is_err());
}
