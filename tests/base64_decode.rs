//! The vendored mail-parser's fast base64 path (vendor/README.md) decodes MIME parts exactly as
//! the crate's plain slice decoder does, for every line shape: line lengths that are and are not
//! multiples of 4, LF and CRLF, spaces and tabs inside, padding, a body cut short.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::{MessageParser, MimeHeaders, PartType};

fn encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn attachment_of(mail: &str) -> Vec<u8> {
    let msg = MessageParser::default().parse(mail.as_bytes()).unwrap();
    let part = msg
        .parts
        .iter()
        .find(|p| p.attachment_name() == Some("f.bin"))
        .expect("the attachment is found");
    match &part.body {
        PartType::Binary(d) | PartType::InlineBinary(d) => d.to_vec(),
        other => panic!("not binary: {other:?}"),
    }
}

#[test]
fn fast_base64_path_decodes_like_the_slice_decoder() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    for len in [0usize, 1, 2, 3, 4, 5, 57, 58, 100, 4999, 5000] {
        let enc = encode(&data[..len]);
        for line in [76usize, 75, 64, 3, 1, 1000] {
            for eol in ["\r\n", "\n"] {
                for junk in ["", " ", "\t"] {
                    let body: Vec<String> = enc
                        .as_bytes()
                        .chunks(line)
                        .map(|c| format!("{}{junk}", std::str::from_utf8(c).unwrap()))
                        .collect();
                    let body = body.join(eol);
                    let mail = format!(
                        "From: a@sev.gov.ru{eol}Subject: t{eol}MIME-Version: 1.0{eol}\
                         Content-Type: multipart/mixed; boundary=\"b\"{eol}{eol}\
                         --b{eol}Content-Type: text/plain{eol}{eol}hi{eol}\
                         --b{eol}Content-Type: application/octet-stream; name=\"f.bin\"{eol}\
                         Content-Transfer-Encoding: base64{eol}{eol}{body}{eol}--b--{eol}"
                    );
                    let got = attachment_of(&mail);
                    let clean: Vec<u8> =
                        body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
                    let want = base64_decode(&clean).unwrap_or_default();
                    assert_eq!(got, want, "len {len} line {line} eol {eol:?} junk {junk:?}");
                    assert_eq!(got, &data[..len]);
                }
            }
        }
    }
}
