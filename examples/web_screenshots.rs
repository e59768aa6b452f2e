//! Takes the README's screenshots of the web console with a real headless Chromium (through
//! chromedriver, as the browser tests do) at 1366×768: the queue and one ticket page, after
//! assigning the ticket and asking its applicant a question.
//!
//!     chromedriver --port=9515 &
//!     cargo run --example web_screenshots -- http://127.0.0.1:9515 http://127.0.0.1:8080 USER PASSWORD TICKET docs/

use fantoccini::{ClientBuilder, Locator};

/// Clicks the button `id` and waits until the page it submits has replaced this one.
async fn submit(c: &fantoccini::Client, id: &str) -> Result<(), Box<dyn std::error::Error>> {
    let old = c.find(Locator::Css("html")).await?;
    c.find(Locator::Id(id)).await?.click().await?;
    for _ in 0..300 {
        if old.tag_name().await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("#{id} did not load a new page").into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        return Err(
            "usage: web_screenshots DRIVER_URL CONSOLE_URL USER PASSWORD TICKET OUT_DIR".into(),
        );
    }
    let (driver, base, user, password, ticket, out) = (&a[1], &a[2], &a[3], &a[4], &a[5], &a[6]);
    let profile = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1366,768", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let c = ClientBuilder::rustls()?
        .capabilities(caps)
        .connect(driver)
        .await?;
    let shot = screenshots(&c, base, user, password, ticket, out).await;
    // Close the session whatever happened, or the browser outlives chromedriver.
    c.close().await?;
    shot
}

async fn screenshots(
    c: &fantoccini::Client,
    base: &str,
    user: &str,
    password: &str,
    ticket: &str,
    out: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    // The screen is 1366×768 (or SCREEN=WxH, e.g. 390x844 for a phone) inside the window: add
    // what the window's frame takes.
    let (w, h) = std::env::var("SCREEN")
        .ok()
        .and_then(|s| {
            let (w, h) = s.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .unwrap_or((1366u32, 768u32));
    c.set_window_size(w, h).await?;
    let inner = c.execute("return window.innerHeight;", vec![]).await?;
    let frame = h - inner.as_u64().unwrap_or(h.into()).min(h.into()) as u32;
    c.set_window_size(w, h + frame).await?;
    c.goto(&format!("{base}/login")).await?;
    c.find(Locator::Id("username"))
        .await?
        .send_keys(user)
        .await?;
    c.find(Locator::Id("password"))
        .await?
        .send_keys(password)
        .await?;
    submit(c, "login").await?;
    std::fs::write(format!("{out}/web_queue.png"), c.screenshot().await?)?;
    c.goto(&format!("{base}/tickets/{ticket}")).await?;
    c.find(Locator::Id("assign-to"))
        .await?
        .send_keys("Петров П.П.")
        .await?;
    submit(c, "assign").await?;
    c.find(Locator::Id("question")).await?
        .send_keys("Уточните, пожалуйста, на каком компьютере (имя или инвентарный номер) возникает ошибка.")
        .await?;
    submit(c, "ask").await?;
    std::fs::write(format!("{out}/web_ticket.png"), c.screenshot().await?)?;
    Ok(())
}
