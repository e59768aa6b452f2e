//! Accounts of the web console: a name, a role and an argon2 hash of the password, in the store's
//! `users` table. A password is never stored, logged or compared as text; [`verify`] costs one
//! argon2 run whether or not the account exists, so timing does not tell which names exist.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use crate::store::{ts, Store};

/// The shortest password `user add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What a person may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 1 ЛТП: takes tickets in, assigns them, asks applicants, changes priority.
    Operator,
    /// 2 ЛТП: works tickets (the same ticket actions).
    Specialist,
    /// Everything, plus releasing quarantined mail.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Operator, Role::Specialist, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Specialist => "specialist",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    pub fn russian(self) -> &'static str {
        match self {
            Role::Operator => "оператор (1 ЛТП)",
            Role::Specialist => "специалист (2 ЛТП)",
            Role::Admin => "администратор",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
}

fn sql_err(e: impl std::fmt::Display) -> String {
    format!("database: {e}")
}

/// An argon2id hash (PHC string) of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > crate::desk::workflow::MAX_NAME_CHARS {
        return Err(format!(
            "имя пользователя: от 1 до {} символов",
            crate::desk::workflow::MAX_NAME_CHARS
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("имя пользователя не может содержать управляющие символы".into());
    }
    Ok(name.to_string())
}

/// Creates the account, or changes the role and password of an existing one; `true` when it was
/// created.
pub fn add(
    store: &Store,
    name: &str,
    role: Role,
    password: &str,
    now: Timestamp,
) -> Result<bool, String> {
    let name = check_name(name)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "пароль слишком короткий: нужно не меньше {MIN_PASSWORD_CHARS} символов"
        ));
    }
    let hash = hash_password(password)?;
    let existed = get(store, &name)?.is_some();
    store
        .conn()
        .execute(
            "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
                                              updated_at = excluded.updated_at",
            params![name, role.as_str(), hash, ts(now)],
        )
        .map_err(sql_err)?;
    Ok(!existed)
}

/// Removes the account; `true` when there was one.
pub fn remove(store: &Store, name: &str) -> Result<bool, String> {
    let n = store
        .conn()
        .execute("DELETE FROM users WHERE name = ?1", params![name.trim()])
        .map_err(sql_err)?;
    Ok(n > 0)
}

pub fn get(store: &Store, name: &str) -> Result<Option<User>, String> {
    Ok(account(store, name)?.map(|(u, _)| u))
}

fn account(store: &Store, name: &str) -> Result<Option<(User, String)>, String> {
    let row: Option<(String, String, String)> = store
        .conn()
        .query_row(
            "SELECT name, role, password_hash FROM users WHERE name = ?1",
            params![name.trim()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql_err)?;
    Ok(row.and_then(|(name, role, hash)| {
        Some((
            User {
                name,
                role: Role::parse(&role)?,
            },
            hash,
        ))
    }))
}

/// Every account, by name.
pub fn list(store: &Store) -> Result<Vec<User>, String> {
    let mut st = store
        .conn()
        .prepare("SELECT name, role FROM users ORDER BY name")
        .map_err(sql_err)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, role) = row.map_err(sql_err)?;
        if let Some(role) = Role::parse(&role) {
            out.push(User { name, role });
        }
    }
    Ok(out)
}

/// A hash of a password nobody has, verified against when the account does not exist, so an
/// unknown name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("mailintake: no such account").unwrap_or_default())
}

/// An account looked up for a login, to be checked with [`Login::check`] — apart, so a caller can
/// run the slow argon2 check without holding the store.
#[derive(Debug, Clone)]
pub struct Login {
    found: Option<(User, String)>,
}

pub fn lookup(store: &Store, name: &str) -> Result<Login, String> {
    Ok(Login {
        found: account(store, name)?,
    })
}

impl Login {
    /// The account when `password` is its password; `None` for a wrong password or an unknown
    /// name (which costs the same argon2 run).
    pub fn check(self, password: &str) -> Option<User> {
        let hash = self
            .found
            .as_ref()
            .map(|(_, h)| h.as_str())
            .unwrap_or_else(|| dummy_hash());
        let ok = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        self.found.filter(|_| ok).map(|(u, _)| u)
    }
}

/// The account when `password` is its password; `None` for a wrong password or an unknown name.
pub fn verify(store: &Store, name: &str, password: &str) -> Result<Option<User>, String> {
    Ok(lookup(store, name)?.check(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_logs_in_with_its_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let now = Timestamp::UNIX_EPOCH;
        assert!(add(&store, "ivanova", Role::Operator, "секрет-123", now).unwrap());
        assert_eq!(
            verify(&store, "ivanova", "секрет-123").unwrap(),
            Some(User {
                name: "ivanova".into(),
                role: Role::Operator
            })
        );
        assert_eq!(verify(&store, "ivanova", "секрет-124").unwrap(), None);
        assert_eq!(verify(&store, "petrov", "секрет-123").unwrap(), None);
        // Adding again changes the role and the password.
        assert!(!add(&store, "ivanova", Role::Admin, "другой-пароль", now).unwrap());
        assert_eq!(verify(&store, "ivanova", "секрет-123").unwrap(), None);
        assert_eq!(
            get(&store, "ivanova").unwrap().map(|u| u.role),
            Some(Role::Admin)
        );
        assert!(add(&store, "x", Role::Admin, "short", now).is_err());
        let stored: String = store
            .conn()
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
    }
}
