//! Replies per second to an SMTP server (`scripts/bench_replies.sh`): N auto-replies, each to
//! `TO` with a copy to `help@sevmiac.ru`, sent one after the other and timed until the server's
//! `250` for the last one.
//!
//! ```text
//! cargo run --release --example reply_bench -- 127.0.0.1:PORT TO N MODE
//! ```
//!
//! MODE: `session` — the daemon's way (one connection with TCP_NODELAY per round of mail);
//! `oneshot` — `Mailer::send`, a new connection (with TCP_NODELAY) per mail;
//! `lettre` — lettre's own transport and sockets (no TCP_NODELAY), as before issue 11.
//! Prints one line: `mode=M replies=N seconds=S replies_per_s=R`.

use std::time::{Duration, Instant};

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailintake::mail::smtp::{build, Mailer, SmtpSecurity, SmtpSettings};
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, to, n, mode] = args.as_slice() else {
        eprintln!("usage: reply_bench HOST:PORT TO N session|oneshot|lettre");
        std::process::exit(2);
    };
    let (host, port) = addr.rsplit_once(':').ok_or("HOST:PORT")?;
    let n: usize = n.parse()?;
    let settings = SmtpSettings {
        host: host.to_string(),
        port: port.parse()?,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "help@sevmiac.ru".into(),
        from_name: Some("СТП ГБУЗС «МИАЦ»".into()),
        timeout: Duration::from_secs(10),
    };
    let stamp = std::process::id();
    let mail = |i: usize| OutgoingMail {
        message_id: format!("bench.{stamp}.{i}@sevmiac.ru"),
        to: to.clone(),
        subject: format!("[Заявка #{i}] Не открывается расписание"),
        text: "Здравствуйте!\n\nВаша заявка зарегистрирована и передана специалисту.\n".repeat(8),
        html: None,
        in_reply_to: Some(format!("orig.{stamp}.{i}@sev.gov.ru")),
        references: vec![],
        auto_submitted: AutoSubmitted::AutoReplied,
        null_sender: true,
        bcc: vec!["help@sevmiac.ru".into()],
    };
    let mailer = Mailer::new(&settings)?;
    let t0 = Instant::now();
    match mode.as_str() {
        "session" => {
            let mut session = mailer.session();
            for i in 0..n {
                session.send(&mail(i)).await?;
            }
            session.close().await;
        }
        "oneshot" => {
            for i in 0..n {
                mailer.send(&mail(i)).await?;
            }
        }
        "lettre" => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(settings.port)
                .build();
            for i in 0..n {
                transport.send(build(&mail(i), &settings)?).await?;
            }
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "mode={mode} replies={n} seconds={s:.3} replies_per_s={:.0}",
        n as f64 / s
    );
    Ok(())
}
