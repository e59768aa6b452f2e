//! Sender authenticity (issue 9) without a network: mails signed here with the local test key,
//! DNS answers from a file (`mail::auth::Zone`), judged by the engine with the policy; forged
//! `Authentication-Results`; hostile DKIM headers; `check --dns-file` as a person runs it.

mod common;

use std::path::Path;

use common::dkim::{sign, zone};
use mailintake::mail::auth::{
    AuthSettings, AuthStep, Authenticator, IntakeAuth, ResolverAddr, Zone,
};
use mailintake::verdict::auth::{
    AuthMode, AuthPolicy, AuthResult, AuthSource, AuthStatus, OnFail, Require, SenderAuth,
};
use mailintake::verdict::engine::evaluate_authenticated;
use mailintake::verdict::rules::RuleSet;
use mailintake::verdict::{Code, Decision, Verdict};

const MTA: &str = "mx.sevmiac.ru";

const FORM: &str = "Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1», +7 (8692) 55-12-34\r\nПоследовательность выполняемых действий: Регистратура → Расписание → Запись\r\nОписание ошибки: Шаблон посещения не существует\r\n";

/// The shipped rules, loaded once (compiling them takes a while in a debug build).
fn rules() -> &'static RuleSet {
    static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap()
    })
}

/// A request as the sender's mail program writes it (before any hop adds headers).
fn request(from: &str, subject: &str) -> String {
    format!(
        "From: Иванова Т.А. <{from}>\r\nTo: help@sevmiac.ru\r\nSubject: {subject}\r\nDate: Fri, 04 Dec 2026 10:00:00 +0300\r\nMessage-ID: <{}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{FORM}",
        subject.len()
    )
}

/// What our MTA delivers: the envelope sender and its own Received line on top.
fn delivered(mail: &str, ip: &str, envelope: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{envelope}>\r\nReceived: from out.example (out.example [{ip}])\r\n\tby {MTA} (Postfix) with ESMTP id 4F2A1\r\n\tfor <help@sevmiac.ru>; Fri, 04 Dec 2026 10:00:01 +0300\r\n{mail}"
    )
    .into_bytes()
}

fn settings(mode: AuthMode, zone_text: &str) -> AuthSettings {
    AuthSettings {
        mode,
        authserv_id: MTA.into(),
        mta_host: MTA.into(),
        resolver: ResolverAddr::System,
        timeout: std::time::Duration::from_secs(1),
        zone: Some(Zone::parse(zone_text).unwrap()),
    }
}

fn verifier() -> Authenticator {
    Authenticator::new(settings(AuthMode::Verify, &zone())).unwrap()
}

fn judge(a: &Authenticator, raw: &[u8], policy: AuthPolicy) -> Verdict {
    let result = a
        .authenticate(raw, false)
        .expect("mode verify gives a result");
    evaluate_authenticated(raw, rules(), true, Some(&SenderAuth { result, policy }))
}

fn checks(v: &Verdict) -> (AuthStatus, AuthStatus, AuthStatus) {
    let a = v.auth.as_ref().expect("auth in the verdict");
    (a.dkim, a.spf, a.dmarc)
}

use AuthStatus::{Fail, None as Absent, Pass, Permerror, Temperror};

#[test]
fn dkim_pass_from_our_domain_is_accepted() {
    let raw = delivered(
        &sign(
            &request("t.ivanova@sev.gov.ru", "Не печатается направление"),
            "sev.gov.ru",
        ),
        "192.0.2.10",
        "t.ivanova@sev.gov.ru",
    );
    let v = judge(&verifier(), &raw, AuthPolicy::default());
    assert_eq!(checks(&v), (Pass, Pass, Pass));
    assert_eq!(v.decision, Decision::Accept, "{:?}", v.reasons);
    let a = v.auth.unwrap();
    assert_eq!(a.dkim_domains, vec!["sev.gov.ru"]);
    assert_eq!(a.source, AuthSource::DnsFile);
    assert_eq!(a.on_fail, None);
}

#[test]
fn body_altered_after_signing_fails_dkim_and_is_filtered() {
    let signed = sign(
        &request("t.ivanova@sev.gov.ru", "Не печатается направление"),
        "sev.gov.ru",
    );
    let altered = signed.replace("Шаблон посещения", "Переведите деньги");
    // Sent from outside sev.gov.ru's servers: SPF fails too, so nothing saves DMARC.
    let raw = delivered(&altered, "198.51.100.7", "t.ivanova@sev.gov.ru");
    let v = judge(&verifier(), &raw, AuthPolicy::default());
    assert_eq!(checks(&v), (Fail, Fail, Fail));
    assert_eq!(v.decision, Decision::Filter);
    assert_eq!(v.reasons.len(), 1);
    assert_eq!(v.reasons[0].code, Code::SenderUnauthenticated);
    assert!(
        v.reasons[0].detail.contains("DMARC"),
        "{}",
        v.reasons[0].detail
    );
    assert_eq!(v.auth.unwrap().on_fail, Some(OnFail::Filter));
}

#[test]
fn from_domain_not_aligned_with_the_signer_is_filtered() {
    // The attacker signs and sends for their own domain and writes our staff's From.
    let raw = delivered(
        &sign(&request("t.ivanova@sev.gov.ru", "Срочно"), "evil.example"),
        "198.51.100.7",
        "bounce@evil.example",
    );
    let a = verifier();
    let v = judge(&a, &raw, AuthPolicy::default());
    assert_eq!(checks(&v), (Pass, Pass, Fail));
    assert_eq!(v.decision, Decision::Filter);
    let v = judge(
        &a,
        &raw,
        AuthPolicy {
            require: Require::DkimOrSpf,
            on_fail: OnFail::Filter,
        },
    );
    assert_eq!(v.decision, Decision::Filter);
    assert!(
        v.reasons[0].detail.contains("другого домена"),
        "{}",
        v.reasons[0].detail
    );
}

#[test]
fn no_signature_passes_only_by_aligned_spf() {
    let a = verifier();
    let unsigned = request("t.ivanova@sev.gov.ru", "Без подписи");
    let from_our_servers = delivered(&unsigned, "192.0.2.10", "t.ivanova@sev.gov.ru");
    let v = judge(&a, &from_our_servers, AuthPolicy::default());
    assert_eq!(checks(&v), (Absent, Pass, Pass));
    assert_eq!(v.decision, Decision::Accept);
    let forged = delivered(&unsigned, "198.51.100.7", "t.ivanova@sev.gov.ru");
    let v = judge(&a, &forged, AuthPolicy::default());
    assert_eq!(checks(&v), (Absent, Fail, Fail));
    assert_eq!(v.decision, Decision::Filter);
    assert_eq!(v.reasons[0].code, Code::SenderUnauthenticated);
}

#[test]
fn quarantine_and_incomplete_policies() {
    let a = verifier();
    let forged = delivered(
        &request("t.ivanova@sev.gov.ru", "[Заявка #1] Дополнение"),
        "198.51.100.7",
        "t.ivanova@sev.gov.ru",
    );
    let q = judge(
        &a,
        &forged,
        AuthPolicy {
            require: Require::Dmarc,
            on_fail: OnFail::Quarantine,
        },
    );
    assert_eq!(q.decision, Decision::Filter);
    assert_eq!(q.auth.as_ref().unwrap().on_fail, Some(OnFail::Quarantine));
    let json = serde_json::to_value(&q).unwrap();
    assert_eq!(json["auth"]["dmarc"], "fail");
    assert_eq!(json["auth"]["source"], "dns_file");
    assert_eq!(json["auth"]["on_fail"], "quarantine");

    // incomplete: a ticket in «Обратная связь»; never a follow-up of someone's ticket.
    let i = judge(
        &a,
        &forged,
        AuthPolicy {
            require: Require::Dmarc,
            on_fail: OnFail::Incomplete,
        },
    );
    assert_eq!(i.decision, Decision::Incomplete);
    assert_eq!(i.followup_of, None);
    assert!(i.has_reason(Code::SenderUnauthenticated));
}

#[test]
fn dns_failure_waits_then_judges_temperror() {
    let z = format!(
        "{}_dmarc.sev.gov.ru SERVFAIL\n",
        zone().replace("_dmarc.sev.gov.ru", "_ignored.sev.gov.ru")
    );
    let intake = IntakeAuth::new(
        settings(AuthMode::Verify, &z),
        AuthPolicy::default(),
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    let raw = delivered(
        &sign(&request("t.ivanova@sev.gov.ru", "DNS"), "sev.gov.ru"),
        "192.0.2.10",
        "t.ivanova@sev.gov.ru",
    );
    let now = jiff::Timestamp::now();
    let just_arrived = now - jiff::SignedDuration::from_secs(60);
    assert_eq!(
        intake.step(&raw, false, true, just_arrived, now),
        AuthStep::Later
    );
    // A sender the domain rule filters anyway is not looked up, nor kept waiting.
    assert_eq!(
        intake.step(&raw, false, false, just_arrived, now),
        AuthStep::Judge(None)
    );
    let long_ago = now - jiff::SignedDuration::from_secs(2 * 3600);
    let AuthStep::Judge(Some(input)) = intake.step(&raw, false, true, long_ago, now) else {
        panic!("after max_wait the mail is judged");
    };
    assert_eq!(input.result.dmarc, Temperror);
    let v = evaluate_authenticated(&raw, rules(), true, Some(&input));
    assert_eq!(v.decision, Decision::Filter);
    assert!(
        v.reasons[0].detail.contains("temperror"),
        "{}",
        v.reasons[0].detail
    );
}

#[test]
fn forged_authentication_results_from_another_authserv_id_are_ignored() {
    let a = Authenticator::new(settings(AuthMode::TrustHeader, "")).unwrap();
    let forged = format!(
        "Authentication-Results: mx.evil.example; dkim=pass header.d=sev.gov.ru; spf=pass smtp.mailfrom=sev.gov.ru; dmarc=pass header.from=sev.gov.ru\r\n{}",
        request("t.ivanova@sev.gov.ru", "Поддельный заголовок")
    );
    let raw = delivered(&forged, "198.51.100.7", "t.ivanova@sev.gov.ru");
    let v = judge(&a, &raw, AuthPolicy::default());
    assert_eq!(checks(&v), (Absent, Absent, Absent));
    assert_eq!(v.auth.as_ref().unwrap().source, AuthSource::Header);
    assert_eq!(v.decision, Decision::Filter);

    // Our MTA's own header, above its Received line, is believed.
    let genuine = format!(
        "Authentication-Results: {MTA}; dkim=pass header.d=sev.gov.ru; spf=pass smtp.mailfrom=t.ivanova@sev.gov.ru; dmarc=pass header.from=sev.gov.ru\r\n{}",
        String::from_utf8(delivered(&request("t.ivanova@sev.gov.ru", "Подлинное"), "192.0.2.10", "t.ivanova@sev.gov.ru")).unwrap()
    );
    let v = judge(&a, genuine.as_bytes(), AuthPolicy::default());
    assert_eq!(checks(&v), (Pass, Pass, Pass));
    assert_eq!(v.decision, Decision::Accept);
}

#[test]
fn hostile_dkim_headers_get_a_verdict() {
    let a = verifier();
    let base = request("t.ivanova@sev.gov.ru", "Плохая подпись");
    let huge = format!(
        "DKIM-Signature: v=1; a=rsa-sha256; d=sev.gov.ru; s=mail; h=from; bh={}; b=AAAA\r\n",
        "A".repeat(2 * 1024 * 1024)
    );
    let cases: Vec<String> = vec![
        format!("DKIM-Signature: garbage;;;===;;\r\n{base}"),
        format!("DKIM-Signature: v=1; a=rsa-sha512; c=relaxed/relaxed; d=sev.gov.ru; s=mail; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==\r\n{base}"),
        format!("DKIM-Signature: v=1; a=ed25519-sha256; d=sev.gov.ru; s=../../etc; h=from; bh=; b=\r\n{base}"),
        format!("{huge}{base}"),
        format!("{}{base}", "DKIM-Signature: v=1; a=ed25519-sha256; d=sev.gov.ru; s=mail; h=from; bh=x; b=y\r\n".repeat(500)),
        format!("Subject: {}\r\n{base}", "я".repeat(300_000)),
        "\r\n".into(),
        String::new(),
    ];
    for (i, c) in cases.iter().enumerate() {
        let raw = delivered(c, "198.51.100.7", "t.ivanova@sev.gov.ru");
        let v = judge(&a, &raw, AuthPolicy::default());
        assert_ne!(v.decision, Decision::Accept, "case {i}");
        assert_ne!(checks(&v).0, Pass, "case {i}");
        // The raw bytes alone, without our delivery headers.
        let _ = judge(&a, c.as_bytes(), AuthPolicy::default());
    }
    // The unknown algorithm is a broken signature, not an accepted one.
    let raw = delivered(&cases[1], "198.51.100.7", "x@sev.gov.ru");
    let r: AuthResult = a.authenticate(&raw, false).unwrap();
    assert!(
        matches!(r.dkim, Permerror | Fail | AuthStatus::Neutral),
        "{:?}",
        r.dkim
    );
}

#[test]
fn dns_file_errors_name_the_line() {
    let e = Zone::parse("sev.gov.ru TXT \"v=spf1 -all\"\nsev.gov.ru CNAME x\n").unwrap_err();
    assert!(e.starts_with("line 2:") && e.contains("CNAME"), "{e}");
    let e = Zone::parse("host A not-an-ip\n").unwrap_err();
    assert!(e.contains("line 1") && e.contains("IPv4"), "{e}");
    let e = Zone::parse("x TXT \"unterminated\n").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn check_dns_file_judges_offline() {
    let dir = tempfile::tempdir().unwrap();
    let dns = dir.path().join("dns.txt");
    std::fs::write(&dns, zone()).unwrap();
    let good = dir.path().join("good.eml");
    std::fs::write(
        &good,
        delivered(
            &sign(&request("t.ivanova@sev.gov.ru", "Подписано"), "sev.gov.ru"),
            "192.0.2.10",
            "t.ivanova@sev.gov.ru",
        ),
    )
    .unwrap();
    let forged = dir.path().join("forged.eml");
    std::fs::write(
        &forged,
        delivered(
            &request("t.ivanova@sev.gov.ru", "Подделка"),
            "198.51.100.7",
            "t.ivanova@sev.gov.ru",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--dns-file"])
        .arg(&dns)
        .args(["--authserv-id", MTA])
        .arg(&good)
        .arg(&forged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["decision"], "accept");
    assert_eq!(lines[0]["auth"]["dkim"], "pass");
    assert_eq!(lines[0]["auth"]["dmarc"], "pass");
    assert_eq!(lines[1]["decision"], "filter");
    assert_eq!(lines[1]["reasons"][0]["code"], "sender_unauthenticated");
    assert_eq!(lines[1]["auth"]["spf"], "fail");

    // The same through the daemon's config: its [auth] section decides.
    let cfg = dir.path().join("mailintake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"help@sevmiac.ru\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nfrom = \"help@sevmiac.ru\"\n\
             [store]\npath = \"x.db\"\n[rules]\ndir = \"rules\"\n\
             [auth]\nmode = \"verify\"\nauthserv_id = \"{MTA}\"\ndns_file = \"dns.txt\"\non_fail = \"quarantine\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--auth-config"])
        .arg(&cfg)
        .arg(&forged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "filter");
    assert_eq!(v["auth"]["on_fail"], "quarantine");

    // Without --authserv-id the check refuses to guess which headers are ours.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--dns-file"])
        .arg(&dns)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("authserv-id"));

    // Default: no authentication, `auth` is null, nothing else changes.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("check")
        .arg(&forged)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "accept");
    assert!(v["auth"].is_null());
}

/// The seeds of the `auth` fuzz target (fuzz/seeds/auth/): mails of these tests, signed with the
/// test key. Rewrite them with `cargo test --test auth -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/auth");
    std::fs::create_dir_all(&dir).unwrap();
    let signed = sign(&request("t.ivanova@sev.gov.ru", "Подписано"), "sev.gov.ru");
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("signed_pass.eml", delivered(&signed, "192.0.2.10", "t.ivanova@sev.gov.ru")),
        (
            "body_altered.eml",
            delivered(&signed.replace("Шаблон", "Шаблоны"), "198.51.100.7", "t.ivanova@sev.gov.ru"),
        ),
        (
            "not_aligned.eml",
            delivered(
                &sign(&request("t.ivanova@sev.gov.ru", "Чужая подпись"), "evil.example"),
                "198.51.100.7",
                "bounce@evil.example",
            ),
        ),
        (
            "unsigned.eml",
            delivered(&request("t.ivanova@sev.gov.ru", "Без подписи"), "192.0.2.10", "<>"),
        ),
        (
            "auth_results.eml",
            format!(
                "Authentication-Results: {MTA}; dkim=pass (ok) header.d=sev.gov.ru; spf=softfail smtp.mailfrom=a@sev.gov.ru; dmarc=pass header.from=sev.gov.ru\r\n{}",
                String::from_utf8(delivered(
                    &format!("Authentication-Results: evil; dmarc=pass\r\n{}", request("t.ivanova@sev.gov.ru", "A-R")),
                    "192.0.2.10",
                    "a@sev.gov.ru"
                ))
                .unwrap()
            )
            .into_bytes(),
        ),
        (
            "unknown_algorithm.eml",
            delivered(
                &format!("DKIM-Signature: v=1; a=rsa-sha512; d=sev.gov.ru; s=mail; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==\r\n{}", request("t.ivanova@sev.gov.ru", "rsa-sha512")),
                "192.0.2.10",
                "t.ivanova@sev.gov.ru",
            ),
        ),
    ];
    for (name, raw) in seeds {
        std::fs::write(dir.join(name), raw).unwrap();
    }
}

/// Every seed of the `auth` fuzz target cut short and garbled at many places (as
/// tests/robustness.rs does for the fixtures): the verifier and the engine give a result each
/// time — the fuzzer's job in miniature, on every `cargo test`.
#[test]
fn truncated_and_garbled_signed_mails_get_a_verdict() {
    let a = verifier();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/auth");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "seeds in {}", dir.display());
    let mut runs = 0;
    for path in seeds {
        let raw = std::fs::read(&path).unwrap();
        let step = (raw.len() / 24).max(1);
        for cut in (0..raw.len()).step_by(step) {
            let _ = judge(&a, &raw[..cut], AuthPolicy::default());
            let mut garbled = raw.clone();
            for (i, b) in [b';', b'=', 0, b'\n', 0xff, b' '].iter().enumerate() {
                if let Some(x) = garbled.get_mut(cut + i * 7) {
                    *x = *b;
                }
            }
            let _ = judge(&a, &garbled, AuthPolicy::default());
            runs += 2;
        }
    }
    assert!(runs > 100, "{runs}");
}

/// A resolver that never answers (a UDP port that swallows every query): the mail's checks end
/// `temperror` within the per-mail budget, not one timeout per lookup.
#[test]
fn silent_resolver_is_temperror_within_the_budget() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let timeout = std::time::Duration::from_secs(1);
    let a = Authenticator::new(AuthSettings {
        mode: AuthMode::Verify,
        authserv_id: MTA.into(),
        mta_host: MTA.into(),
        resolver: ResolverAddr::At(silent.local_addr().unwrap()),
        timeout,
        zone: None,
    })
    .unwrap();
    let raw = delivered(
        &sign(&request("t.ivanova@sev.gov.ru", "Тишина"), "sev.gov.ru"),
        "192.0.2.10",
        "t.ivanova@sev.gov.ru",
    );
    let started = std::time::Instant::now();
    let r = a.authenticate(&raw, false).unwrap();
    let took = started.elapsed();
    assert!(r.has_temperror(), "{r:?}");
    assert_eq!(r.source, AuthSource::Verify);
    assert!(
        took <= mailintake::mail::auth::per_mail_budget(timeout)
            + std::time::Duration::from_secs(2),
        "{took:?}"
    );
    drop(silent);
}

/// The domain rule comes first: a foreign sender is `sender_domain` only; its authentication is
/// still recorded.
#[test]
fn foreign_domain_is_filtered_by_the_domain_rule_alone() {
    let raw = delivered(
        &request("ivanova.tatyana1985@gmail.com", "Не работает запись"),
        "198.51.100.7",
        "ivanova.tatyana1985@gmail.com",
    );
    let v = judge(&verifier(), &raw, AuthPolicy::default());
    assert_eq!(v.decision, Decision::Filter);
    assert_eq!(v.reasons.len(), 1);
    assert_eq!(v.reasons[0].code, Code::SenderDomain);
    assert!(v.auth.is_some());
}
