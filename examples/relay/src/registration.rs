//! Registration by phone number: a verification code goes out through a pluggable
//! [`CodeSender`]; the device proves it received it. Attempts are rate limited.
//!
//! Phone numbers never reach the logs in the clear: [`redact`] keeps the country
//! prefix and the last two digits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use subtle::ConstantTimeEq;

/// Delivers a verification code to a phone number (SMS, voice call, ...).
pub trait CodeSender: Send + Sync {
    /// Send `code` to `phone`.
    fn send_code(&self, phone: &str, code: &str) -> Result<(), String>;
}

/// The development sender: logs the code (not the number) and, if given a folder,
/// writes it to `<folder>/<phone>.code` for scripts and the demo to read.
#[derive(Clone, Debug, Default)]
pub struct DevCodeSender {
    /// Where code files go.
    pub dir: Option<PathBuf>,
}

impl CodeSender for DevCodeSender {
    fn send_code(&self, phone: &str, code: &str) -> Result<(), String> {
        tracing::info!(phone = %redact(phone), code, "development code sender");
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{phone}.code"));
            let tmp = dir.join(format!("{phone}.code.tmp"));
            std::fs::write(&tmp, code)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// `+44*******89`: what logs show of a phone number.
pub fn redact(phone: &str) -> String {
    let n = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 3 || i + 2 >= n { c } else { '*' })
        .collect()
}

/// Whether `phone` is E.164: `+` then 8 to 15 digits.
pub fn valid_phone(phone: &str) -> bool {
    let Some(d) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

/// Registration limits.
#[derive(Clone, Debug)]
pub struct RegistrationLimits {
    /// Codes one number may be sent per window.
    pub codes_per_window: u32,
    /// The window.
    pub window: Duration,
    /// How long a code is valid.
    pub code_ttl: Duration,
    /// Wrong guesses before a code is void.
    pub max_attempts: u32,
}

impl Default for RegistrationLimits {
    fn default() -> Self {
        RegistrationLimits {
            codes_per_window: 3,
            window: Duration::from_secs(600),
            code_ttl: Duration::from_secs(600),
            max_attempts: 5,
        }
    }
}

struct Pending {
    code: String,
    issued: Instant,
    attempts: u32,
    sent_in_window: Vec<Instant>,
}

/// Why a registration step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    /// Not an E.164 number.
    BadPhone,
    /// Too many codes or attempts for this number.
    RateLimited,
    /// No valid code, or the wrong one.
    BadCode,
    /// The code sender failed.
    SenderFailed(String),
}

/// Pending verification codes (in memory: a code outlives neither its ten minutes nor
/// a restart of this relay process, which then simply sends a new one).
pub struct Registrar {
    sender: Box<dyn CodeSender>,
    limits: RegistrationLimits,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Registrar {
    /// Codes go out through `sender`.
    pub fn new(sender: Box<dyn CodeSender>, limits: RegistrationLimits) -> Self {
        Registrar {
            sender,
            limits,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Issue and send a new code for `phone`.
    pub fn request_code(&self, phone: &str) -> Result<(), RegistrationError> {
        if !valid_phone(phone) {
            return Err(RegistrationError::BadPhone);
        }
        let now = Instant::now();
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let e = p.entry(phone.to_string()).or_insert_with(|| Pending {
                code: String::new(),
                issued: now,
                attempts: 0,
                sent_in_window: Vec::new(),
            });
            e.sent_in_window
                .retain(|t| now.duration_since(*t) < self.limits.window);
            if e.sent_in_window.len() as u32 >= self.limits.codes_per_window {
                return Err(RegistrationError::RateLimited);
            }
            e.sent_in_window.push(now);
            e.code = code.clone();
            e.issued = now;
            e.attempts = 0;
            // Old entries go once their window has passed.
            let (ttl, window) = (self.limits.code_ttl, self.limits.window);
            p.retain(|_, v| {
                now.duration_since(v.issued) < ttl.max(window)
                    || v.sent_in_window
                        .iter()
                        .any(|t| now.duration_since(*t) < window)
            });
        }
        self.sender
            .send_code(phone, &code)
            .map_err(RegistrationError::SenderFailed)
    }

    /// Check `code` for `phone`; a correct code is used up.
    pub fn verify(&self, phone: &str, code: &str) -> Result<(), RegistrationError> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = p.get_mut(phone) else {
            return Err(RegistrationError::BadCode);
        };
        if e.code.is_empty() || e.issued.elapsed() >= self.limits.code_ttl {
            return Err(RegistrationError::BadCode);
        }
        if e.attempts >= self.limits.max_attempts {
            return Err(RegistrationError::RateLimited);
        }
        e.attempts += 1;
        if bool::from(e.code.as_bytes().ct_eq(code.as_bytes())) {
            e.code.clear();
            Ok(())
        } else {
            Err(RegistrationError::BadCode)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[derive(Default)]
    struct Capture(Mutex<Vec<(String, String)>>);
    impl CodeSender for Arc<Capture> {
        fn send_code(&self, phone: &str, code: &str) -> Result<(), String> {
            self.0.lock().unwrap().push((phone.into(), code.into()));
            Ok(())
        }
    }

    #[test]
    fn codes_are_single_use_limited_and_rate_limited() {
        let cap = Arc::new(Capture::default());
        let r = Registrar::new(Box::new(cap.clone()), RegistrationLimits::default());
        assert_eq!(r.request_code("12345"), Err(RegistrationError::BadPhone));
        r.request_code("+4915112345678").unwrap();
        let code = cap.0.lock().unwrap()[0].1.clone();
        assert_eq!(code.len(), 6);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(
            r.verify("+4915112345678", wrong),
            Err(RegistrationError::BadCode)
        );
        r.verify("+4915112345678", &code).unwrap();
        assert_eq!(
            r.verify("+4915112345678", &code),
            Err(RegistrationError::BadCode)
        );
        // Five wrong guesses void a code.
        r.request_code("+4915112345678").unwrap();
        let code = cap.0.lock().unwrap()[1].1.clone();
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for _ in 0..5 {
            assert_eq!(
                r.verify("+4915112345678", wrong),
                Err(RegistrationError::BadCode)
            );
        }
        assert_eq!(
            r.verify("+4915112345678", &code),
            Err(RegistrationError::RateLimited)
        );
        // Three codes per window.
        r.request_code("+4915112345678").unwrap();
        assert_eq!(
            r.request_code("+4915112345678"),
            Err(RegistrationError::RateLimited)
        );
        assert_eq!(redact("+4915112345678"), "+49*********78");
    }
}
