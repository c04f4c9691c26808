//! One pool of read-write sessions per slot. PKCS#11 logs in per application and token, not per
//! session, and logs out when the token's last session closes: the pool therefore always keeps
//! one session open (`anchor`), logged in once. A session is used by one thread at a time
//! (cryptoki's `Session` is `Send`, not `Sync`); an operation takes one from the pool and gives
//! it back. After an error that says the session or the login is gone (a device reset), the
//! session is dropped and the next one is opened and logged in again.

use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::{HsmError, Result};

/// Idle sessions kept per slot beyond the anchor.
const IDLE: usize = 16;

pub(crate) struct SlotPool {
    slot: Slot,
    context: Pkcs11,
    password: Zeroizing<String>,
    idle: Mutex<Vec<Session>>,
    /// Keeps the login alive; reopened with the others after a reset.
    anchor: Mutex<Option<Session>>,
}

/// Whether an error means the session (or its login) is no longer usable.
pub(crate) fn session_lost(e: &Error) -> bool {
    matches!(
        e,
        Error::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

impl SlotPool {
    pub(crate) fn open(
        context: &Pkcs11,
        slot: Slot,
        password: Zeroizing<String>,
    ) -> Result<SlotPool> {
        let pool = SlotPool {
            slot,
            context: context.clone(),
            password,
            idle: Mutex::new(Vec::new()),
            anchor: Mutex::new(None),
        };
        let anchor = pool.new_session()?;
        if let Ok(mut a) = pool.anchor.lock() {
            *a = Some(anchor);
        }
        Ok(pool)
    }

    /// A new session, logged in (a login already held by the application is fine).
    fn new_session(&self) -> Result<Session> {
        let id = self.slot.id();
        let session = self
            .context
            .open_rw_session(self.slot)
            .map_err(|e| HsmError::Login {
                slot: id,
                reason: format!("cannot open a session: {e}"),
            })?;
        let pin = AuthPin::new(self.password.as_str().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(Error::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
                Err(HsmError::Login {
                    slot: id,
                    reason: "the password is wrong".into(),
                })
            }
            Err(Error::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::Login {
                slot: id,
                reason: "the user PIN is locked (too many wrong attempts); unlock it with the HSM's tools".into(),
            }),
            Err(e) => Err(HsmError::Login {
                slot: id,
                reason: e.to_string(),
            }),
        }
    }

    /// Runs `f` on a session of this slot; a session that `f` found lost is dropped, the anchor
    /// reopened, and `f` tried once more on a fresh session.
    pub(crate) fn with_session<T>(
        &self,
        operation: &'static str,
        f: impl Fn(&Session) -> std::result::Result<T, Error>,
    ) -> Result<T> {
        for attempt in 0..2 {
            let session = match self.idle.lock().ok().and_then(|mut i| i.pop()) {
                Some(s) => s,
                None => self.new_session()?,
            };
            match f(&session) {
                Ok(v) => {
                    if let Ok(mut idle) = self.idle.lock()
                        && idle.len() < IDLE
                    {
                        idle.push(session);
                    }
                    return Ok(v);
                }
                Err(e) if session_lost(&e) && attempt == 0 => {
                    tracing::warn!(slot = self.slot.id(), error = %e, "HSM session lost; reopening");
                    drop(session);
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.clear();
                    }
                    if let Ok(mut anchor) = self.anchor.lock() {
                        *anchor = None;
                        *anchor = Some(self.new_session()?);
                    }
                }
                Err(e) => {
                    if !session_lost(&e)
                        && let Ok(mut idle) = self.idle.lock()
                        && idle.len() < IDLE
                    {
                        idle.push(session);
                    }
                    return Err(crate::objects::device(operation, e));
                }
            }
        }
        Err(HsmError::Device {
            operation,
            reason: "the HSM session was lost twice".into(),
        })
    }
}
