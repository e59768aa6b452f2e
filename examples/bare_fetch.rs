//! The baseline of the backlog benchmark (`scripts/bench_backlog.sh`): the least an IMAP client
//! can do to read a mailbox — plain TCP, LOGIN, SELECT, one `UID FETCH 1:* BODY.PEEK[]`, the
//! stream consumed and its bytes counted, LOGOUT. Nothing is parsed, stored or moved.
//!
//! ```text
//! IMAP_PASSWORD=... cargo run --release --example bare_fetch -- 127.0.0.1:PORT help@sevmiac.ru INBOX
//! ```
//!
//! Prints one line: `mails=N bytes=B session_s=S fetch_s=F` (session: connect to logout;
//! fetch: the FETCH command alone).

use std::time::Instant;

use futures::StreamExt;
use tokio::net::TcpStream;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, user, mailbox] = args.as_slice() else {
        eprintln!("usage: bare_fetch HOST:PORT USER MAILBOX   (password in IMAP_PASSWORD)");
        std::process::exit(2);
    };
    let password = std::env::var("IMAP_PASSWORD").map_err(|_| "IMAP_PASSWORD is not set")?;

    let t0 = Instant::now();
    let tcp = TcpStream::connect(addr.as_str()).await?;
    tcp.set_nodelay(true)?;
    let mut client = async_imap::Client::new(tcp);
    client
        .read_response()
        .await?
        .ok_or("the server closed the connection before its greeting")?;
    let mut session = client.login(user, &password).await.map_err(|(e, _)| e)?;
    session.select(mailbox).await?;

    let t1 = Instant::now();
    let (mut mails, mut bytes) = (0u64, 0u64);
    {
        let mut stream = session.uid_fetch("1:*", "BODY.PEEK[]").await?;
        while let Some(item) = stream.next().await {
            let fetch = item?;
            if let Some(body) = fetch.body() {
                mails += 1;
                bytes += body.len() as u64;
            }
        }
    }
    let fetch_s = t1.elapsed().as_secs_f64();
    session.logout().await?;
    let session_s = t0.elapsed().as_secs_f64();
    println!("mails={mails} bytes={bytes} session_s={session_s:.3} fetch_s={fetch_s:.3}");
    Ok(())
}
