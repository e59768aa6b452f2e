//! Who is logged in: sessions (random tokens in an HttpOnly, SameSite=Strict cookie, kept in
//! memory — a restart logs everyone out), the CSRF token every form carries, and the login
//! limiter that slows down and then stops repeated wrong passwords.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};

use crate::desk::users::Role;
use crate::web::Console;

pub const SESSION_COOKIE: &str = "mailintake_session";
/// The login form's own CSRF token (double submit: cookie and hidden field must match).
pub const LOGIN_COOKIE: &str = "mailintake_login";

/// Failed logins are counted over this window.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords for one name before it is locked for the rest of the window.
const MAX_PER_NAME: usize = 5;
/// Wrong passwords from one address (several names) before it is locked.
const MAX_PER_ADDRESS: usize = 20;
/// The answer to a wrong password waits this long per recent failure, up to `MAX_DELAY`.
const DELAY_STEP: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(3);

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Compares without stopping at the first difference.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    role: Role,
    csrf: String,
    last_seen: Instant,
    flash: Option<Flash>,
}

/// The sessions of logged-in people, by token.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn create(&self, user: &str, role: Role) -> String {
        let token = random_token();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                role,
                csrf: random_token(),
                last_seen: Instant::now(),
                flash: None,
            },
        );
        token
    }

    /// The session behind `token` if it is alive (and marks it used); expired ones are dropped.
    fn touch(&self, token: &str, ttl: Duration) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.last_seen) < ttl);
        let s = map.get_mut(token)?;
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    pub fn set_flash(&self, token: &str, ok: bool, text: String) {
        if let Some(s) = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(token)
        {
            s.flash = Some(Flash { ok, text });
        }
    }

    pub fn take_flash(&self, token: &str) -> Option<Flash> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(token)
            .and_then(|s| s.flash.take())
    }
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, the whole site; `Secure` behind HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The logged-in person behind a request. Pages and downloads take this: without a live session
/// the request is sent to the login page and nothing else happens.
#[derive(Debug, Clone)]
pub struct Authed {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub token: String,
}

impl Authed {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether a submitted form carries this session's CSRF token.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        same_token(&self.csrf, submitted)
    }
}

/// Where to go after logging in: only a path on this site (no `//host`, no scheme).
pub fn safe_next(next: &str) -> Option<String> {
    (next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() < 1000
        && !next.chars().any(char::is_control))
    .then(|| next.to_string())
}

impl FromRequestParts<Arc<Console>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let found = cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|t| state.sessions.touch(&t, state.session_ttl).map(|s| (t, s)));
        match found {
            Some((token, s)) => Ok(Authed {
                user: s.user,
                role: s.role,
                csrf: s.csrf,
                token,
            }),
            None => {
                let target = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .and_then(safe_next)
                    .filter(|_| parts.method == axum::http::Method::GET)
                    .map(|p| format!("/login?next={}", urlencode(&p)))
                    .unwrap_or_else(|| "/login".into());
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|v| v.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// Counts recent failed logins per name and per address.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn name_key(name: &str) -> String {
    format!("name:{}", name.trim().to_lowercase())
}

fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

impl LoginLimiter {
    fn recent(map: &mut HashMap<String, VecDeque<Instant>>, key: &str) -> usize {
        let now = Instant::now();
        match map.get_mut(key) {
            Some(q) => {
                while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    q.pop_front();
                }
                q.len()
            }
            None => 0,
        }
    }

    /// How long until `name` from `addr` may try again; `None` when it may try now.
    pub fn locked(&self, name: &str, addr: &str) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, max) in [
            (name_key(name), MAX_PER_NAME),
            (address_key(addr), MAX_PER_ADDRESS),
        ] {
            if Self::recent(&mut map, &key) >= max {
                let oldest = map.get(&key).and_then(|q| q.front().copied());
                let left = oldest
                    .map(|t| WINDOW.saturating_sub(t.elapsed()))
                    .unwrap_or(WINDOW);
                wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
            }
        }
        wait
    }

    /// Records a wrong password; how long to hold the answer back.
    pub fn failed(&self, name: &str, addr: &str) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for key in [name_key(name), address_key(addr)] {
            Self::recent(&mut map, &key);
            let q = map.entry(key).or_default();
            q.push_back(Instant::now());
            n = n.max(q.len());
        }
        // Old entries of names nobody tries any more would pile up: prune now and then.
        if map.len() > 10_000 {
            let now = Instant::now();
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        (DELAY_STEP * n as u32).min(MAX_DELAY)
    }

    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name_key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_passwords_lock_the_name_and_each_waits_longer() {
        let l = LoginLimiter::default();
        assert!(l.locked("ivanova", "127.0.0.1").is_none());
        let waits: Vec<Duration> = (0..5).map(|_| l.failed("Ivanova", "127.0.0.1")).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(waits[0] >= Duration::from_millis(500));
        assert!(l.locked("ivanova", "127.0.0.2").is_some());
        assert!(l.locked("petrov", "127.0.0.1").is_none());
    }

    #[test]
    fn next_is_a_path_on_this_site_only() {
        assert_eq!(safe_next("/tickets/5"), Some("/tickets/5".into()));
        assert_eq!(safe_next("//evil.example/"), None);
        assert_eq!(safe_next("https://evil.example/"), None);
        assert_eq!(safe_next("/\\evil"), None);
    }
}
