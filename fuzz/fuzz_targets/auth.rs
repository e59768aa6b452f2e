//! Sender authenticity on arbitrary bytes as a raw mail (issue 9): the trusted
//! `Authentication-Results` reader, DKIM/SPF/DMARC verification by mail-auth with DNS answers from
//! a fixed zone (no network; `mail::auth::Verifier` on this thread, so a panic shows), and the
//! engine judging the mail with each result.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailintake::mail::auth::{AuthSettings, ResolverAddr, Verifier, Zone};
use mailintake::verdict::auth::{self, AuthMode, AuthPolicy, SenderAuth};
use mailintake::verdict::engine;
use mailintake::verdict::rules::RuleSet;

mod harness;

const MTA: &str = "mx.sevmiac.ru";
/// The zone of the tests (tests/common/dkim.rs), so seeds signed there verify here.
const ZONE: &str = "sev.gov.ru TXT \"v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.1 mx a:out.sev.gov.ru -all\"\n\
_dmarc.sev.gov.ru TXT \"v=DMARC1; p=reject\"\n\
mail._domainkey.sev.gov.ru TXT \"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n\
sev.gov.ru MX 10 out.sev.gov.ru\n\
out.sev.gov.ru A 192.0.2.1\n";

struct State {
    rules: RuleSet,
    verifier: Verifier,
}

static STATE: OnceLock<State> = OnceLock::new();

fuzz_target!(
    init: {
        harness::install_panic_hook();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        let rules = RuleSet::load(&dir)
            .unwrap_or_else(|e| panic!("rules in {} do not load: {e}", dir.display()));
        let verifier = Verifier::new(AuthSettings {
            mode: AuthMode::Verify,
            authserv_id: MTA.into(),
            mta_host: MTA.into(),
            resolver: ResolverAddr::System,
            timeout: std::time::Duration::from_secs(1),
            zone: Some(Zone::parse(ZONE).expect("zone")),
        })
        .expect("verifier");
        let _ = STATE.set(State { rules, verifier });
    },
    |data: &[u8]| {
        let st = STATE.get().expect("state is set in init");
        harness::run(|| {
            let policy = AuthPolicy::default();
            let header = auth::trusted_results(data, MTA, MTA);
            let _ = engine::evaluate_authenticated(
                data,
                &st.rules,
                true,
                Some(&SenderAuth { result: header, policy }),
            );
            let verified = st.verifier.verify(data, false);
            let _ = engine::evaluate_authenticated(
                data,
                &st.rules,
                true,
                Some(&SenderAuth { result: verified, policy }),
            );
        });
    }
);
