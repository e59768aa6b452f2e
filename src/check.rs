//! The `check` command: mail files in, one JSON verdict per line out (JSON Lines), in the order
//! given. Folders are walked recursively in name order, taking `*.eml`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::mail::auth::Authenticator;
use crate::verdict::auth::{AuthPolicy, SenderAuth};
use crate::verdict::engine;
use crate::verdict::rules::RuleSet;
use crate::verdict::Verdict;

/// One output line: the file as given, then the verdict's fields.
#[derive(Serialize)]
pub struct CheckLine<'a> {
    pub file: &'a str,
    #[serde(flatten)]
    pub verdict: &'a Verdict,
}

/// Expand the paths into mail files, in order: a file as given; a folder's `.eml` files,
/// recursively, sorted by path. A path that does not exist is an error naming it.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {}", p.display(), e))?;
        if meta.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {}", p.display(), e))?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// The kind as written in JSON (`image`, `archive`, …).
pub fn kind_name(k: crate::verdict::AttachmentKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A human view of one verdict, for `--pretty`.
pub fn pretty(file: &str, v: &Verdict) -> String {
    let mut s = format!("{file}\n  решение: {}", v.decision.as_str());
    if let Some(n) = v.followup_of {
        s.push_str(&format!(" (к заявке #{n})"));
    }
    s.push_str(&format!(
        "\n  от: {}\n  тема: {}\n  приоритет: {}",
        v.sender,
        v.subject,
        v.priority.russian()
    ));
    if let Some(i) = v.impact {
        s.push_str(&format!(", влияние: {}", i.russian()));
    }
    if let Some(a) = &v.auth {
        s.push_str(&format!("\n  подлинность: {}", a.summary()));
    }
    for r in &v.reasons {
        s.push_str(&format!("\n  ✗ {}: {}", r.code.as_str(), r.detail));
    }
    for w in &v.warnings {
        s.push_str(&format!("\n  ! {}: {}", w.code.as_str(), w.detail));
    }
    for a in &v.attachments {
        s.push_str(&format!(
            "\n  📎 {} ({}, {} байт, {})",
            a.name,
            kind_name(a.kind),
            a.bytes,
            a.content_type
        ));
        for e in &a.entries {
            s.push_str(&format!(
                "\n      {} ({:?}, {} байт)",
                e.name, e.kind, e.bytes
            ));
        }
    }
    s.push('\n');
    s
}

/// Run `check` over the files; returns false when some file could not be read.
pub fn run(files: &[PathBuf], given_as: &[String], rules: &RuleSet, pretty_out: bool) -> bool {
    run_with_auth(files, given_as, rules, pretty_out, None)
}

/// `check` with sender authentication (`--trust-header` or `--dns-file`): each mail's result
/// is computed first and judged with the policy, as the daemon does (no waiting for DNS here:
/// a `temperror` is judged as it is).
pub fn run_with_auth(
    files: &[PathBuf],
    given_as: &[String],
    rules: &RuleSet,
    pretty_out: bool,
    auth: Option<(&Authenticator, AuthPolicy)>,
) -> bool {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut ok = true;
    for (path, shown) in files.iter().zip(given_as) {
        let raw = match std::fs::read(path) {
            Ok(r) => r,
            Err(e) => {
                let _ = out.flush();
                eprintln!("mailintake: {}: {}", path.display(), e);
                ok = false;
                continue;
            }
        };
        let input = auth.and_then(|(a, policy)| {
            a.authenticate(&raw, false)
                .map(|result| SenderAuth { result, policy })
        });
        let verdict = engine::evaluate_authenticated(&raw, rules, true, input.as_ref());
        let line = if pretty_out {
            pretty(shown, &verdict)
        } else {
            let mut l = serde_json::to_string(&CheckLine {
                file: shown,
                verdict: &verdict,
            })
            .unwrap_or_else(|e| format!("{{\"file\":{:?},\"error\":{:?}}}", shown, e.to_string()));
            l.push('\n');
            l
        };
        if out.write_all(line.as_bytes()).is_err() {
            return ok; // stdout closed (e.g. piped into head): nothing more to say
        }
    }
    let _ = out.flush();
    ok
}

/// Figures for `check --bench`: every file judged `rounds` times.
pub fn bench(files: &[PathBuf], rules: &RuleSet, rounds: usize) -> Result<String, String> {
    let mails: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {}", p.display(), e)))
        .collect::<Result<_, _>>()?;
    let bytes: usize = mails.iter().map(Vec::len).sum();
    let mut lat = Vec::with_capacity(mails.len() * rounds);
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    for _ in 0..rounds {
        for m in &mails {
            let t = Instant::now();
            std::hint::black_box(engine::evaluate(m, rules));
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let n = mails.len() * rounds;
    Ok(format!(
        "{} mails × {} rounds, {:.1} MB per round: {:.0} mails/s, {:.1} MB/s; latency µs p50 {:.0}, p95 {:.0}, p99 {:.0}, max {:.0}; cpu_s={:.3}",
        mails.len(),
        rounds,
        bytes as f64 / 1e6,
        n as f64 / secs,
        (bytes * rounds) as f64 / 1e6 / secs,
        pct(0.5),
        pct(0.95),
        pct(0.99),
        lat.last().copied().unwrap_or(0.0),
        cpu
    ))
}

/// CPU time this process has used (user + system), in seconds: on a busy machine it measures
/// the work, where wall-clock time also counts the waits for a core.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass; no other memory is touched.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
