//! DKIM signing and DNS answers for the sender-authenticity tests (issue 9), with a local test
//! key: the Ed25519 pair of mail-auth's own signing example — public test material, never a
//! real domain's key. Nothing here touches the network.

use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

/// The test key (seed and public key, base64).
pub const ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
pub const ED25519_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

fn b64(s: &str) -> Vec<u8> {
    mail_parser::decoders::base64::base64_decode(s.as_bytes()).expect("base64")
}

/// `mail` (CRLF lines) with a DKIM-Signature of `domain`, selector `mail`, prepended.
pub fn sign(mail: &str, domain: &str) -> String {
    let key = Ed25519Key::from_seed_and_public_key(&b64(ED25519_SEED), &b64(ED25519_PUBLIC))
        .expect("test key");
    let sig = DkimSigner::from_key(key)
        .domain(domain)
        .selector("mail")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(mail.as_bytes())
        .expect("sign");
    format!("{}{}", sig.to_header(), mail)
}

/// The DNS answers of the tests: sev.gov.ru sends from 192.0.2.0/24 and 127.0.0.1 (the test
/// Postfix), publishes `p=reject` and the test key; evil.example has its own SPF and the same key
/// (an attacker signing for their own domain).
pub fn zone() -> String {
    format!(
        "# DNS answers for the sender-authenticity tests\n\
         sev.gov.ru                      TXT \"v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.1 -all\"\n\
         _dmarc.sev.gov.ru               TXT \"v=DMARC1; p=reject\"\n\
         mail._domainkey.sev.gov.ru      TXT \"v=DKIM1; k=ed25519; p={ED25519_PUBLIC}\"\n\
         evil.example                    TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n\
         mail._domainkey.evil.example    TXT \"v=DKIM1; k=ed25519; \" \"p={ED25519_PUBLIC}\"\n"
    )
}
