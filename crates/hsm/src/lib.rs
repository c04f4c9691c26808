//! Keys held in an HSM through PKCS#11 (`cryptoki`): the vendor library loaded once, a pool of
//! logged-in sessions per slot (`pool.rs`), and the operations the KMS runs inside the HSM
//! (`objects.rs`). Key material that the HSM marks sensitive never leaves it.
//!
//! Every function here blocks (PKCS#11 calls are synchronous): callers on an async runtime run
//! them on its blocking pool. The crate knows nothing of KMIP; it speaks of slots, labels, key
//! kinds and mechanisms. Passwords are kept only in the pool (to log in again after a device
//! reset), in memory wiped on drop, and never appear in an error or in `Debug` output.

mod objects;
mod pool;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::slot::Slot;
use zeroize::Zeroizing;

pub use objects::{
    Cipher, Exported, Hash, HsmObject, KeyKind, ObjectClass, PairKind, PublicKey, Signature,
};
use pool::SlotPool;

/// Why an HSM call failed. Messages say what to fix and never carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error(
        "cannot load the PKCS#11 library {path}: {reason}; check --hsm-library (or --hsm-model)"
    )]
    Library { path: PathBuf, reason: String },
    #[error(
        "HSM slot {slot} does not exist or holds no token; the library offers slots {available}; check --hsm-slot"
    )]
    NoSuchSlot { slot: u64, available: String },
    #[error(
        "cannot log in to HSM slot {slot}: {reason}; check the --hsm-password paired with this slot"
    )]
    Login { slot: u64, reason: String },
    #[error("`{0}` is not an HSM object identifier: expected hsm::<slot>::<label>")]
    BadReference(String),
    #[error("HSM slot {0} is not configured on this server (--hsm-slot)")]
    SlotNotConfigured(u64),
    #[error("no HSM object `{0}`")]
    NotFound(String),
    #[error("an HSM object `{0}` exists already; choose another label")]
    AlreadyExists(String),
    #[error("the HSM does not let `{0}` leave it (it is sensitive or not extractable)")]
    NotExtractable(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "decryption failed: the ciphertext, tag, IV, padding, additional data or key differ from those used to encrypt"
    )]
    DecryptionFailed,
    #[error("the HSM refused {operation}: {reason}")]
    Device {
        operation: &'static str,
        reason: String,
    },
}

pub type Result<T, E = HsmError> = std::result::Result<T, E>;

/// An HSM object as the KMS names it: `hsm::<slot>::<label>`, parsed once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HsmRef {
    pub slot: u64,
    pub label: String,
}

/// The prefix of every HSM object identifier.
pub const PREFIX: &str = "hsm::";

impl HsmRef {
    /// `None` when `uid` does not name an HSM object at all; an error when it starts like one
    /// but is malformed.
    pub fn parse(uid: &str) -> Option<Result<HsmRef>> {
        let rest = uid.strip_prefix(PREFIX)?;
        let parsed = rest.split_once("::").and_then(|(slot, label)| {
            let slot = slot.parse::<u64>().ok()?;
            (!label.is_empty() && label.len() <= 128).then(|| HsmRef {
                slot,
                label: label.to_owned(),
            })
        });
        Some(parsed.ok_or_else(|| HsmError::BadReference(uid.to_owned())))
    }

    /// The identifier the KMS shows: `hsm::<slot>::<label>`.
    pub fn uid(&self) -> String {
        format!("{PREFIX}{}::{}", self.slot, self.label)
    }

    /// The public half of a key pair created as `self` (the private key): `<label>_pk`.
    pub fn public_half(&self) -> HsmRef {
        HsmRef {
            slot: self.slot,
            label: format!("{}_pk", self.label),
        }
    }
}

/// Where the library of each HSM model usually is; `--hsm-library` overrides it.
pub fn default_library(model: &str) -> Option<&'static str> {
    match model {
        "softhsm2" => Some("/usr/lib/softhsm/libsofthsm2.so"),
        "utimaco" => Some("/lib/libcs_pkcs11_R3.so"),
        "proteccio" => Some("/lib/libnethsm.so"),
        _ => None,
    }
}

/// The library's own description (`C_GetInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryInfo {
    pub cryptoki_version: (u8, u8),
    pub manufacturer: String,
    pub description: String,
    pub library_version: (u8, u8),
}

/// A loaded PKCS#11 library with a logged-in session pool for each configured slot.
pub struct Hsm {
    library: PathBuf,
    context: Pkcs11,
    pools: BTreeMap<u64, SlotPool>,
    /// Object handles and descriptions already looked up (see `objects::on_object`).
    handles: std::sync::Mutex<
        std::collections::HashMap<HsmRef, (cryptoki::object::ObjectHandle, HsmObject)>,
    >,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("library", &self.library)
            .field("slots", &self.pools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Hsm {
    /// Loads `library`, initialises it for several threads, and logs in to each slot with its
    /// password: a library that does not load, a slot without a token or a wrong password is an
    /// error naming what to fix.
    pub fn open(library: &Path, slots: &[(u64, Zeroizing<String>)]) -> Result<Hsm> {
        let failed = |reason: String| HsmError::Library {
            path: library.to_owned(),
            reason,
        };
        if !library.is_file() {
            return Err(failed("no such file".into()));
        }
        let context = Pkcs11::new(library).map_err(|e| failed(e.to_string()))?;
        // Loading the library twice in one process gives the same library, already initialised
        // (a server restarted in-process, tests).
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(failed(format!("C_Initialize failed: {e}"))),
        }
        let present: Vec<Slot> = context
            .get_slots_with_token()
            .map_err(|e| failed(format!("C_GetSlotList failed: {e}")))?;
        let mut pools = BTreeMap::new();
        for (id, password) in slots {
            let Some(slot) = present.iter().find(|s| s.id() == *id) else {
                return Err(HsmError::NoSuchSlot {
                    slot: *id,
                    available: present
                        .iter()
                        .map(|s| s.id().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            pools.insert(*id, SlotPool::open(&context, *slot, password.clone())?);
        }
        Ok(Hsm {
            library: library.to_owned(),
            context,
            pools,
            handles: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn forget(&self, r: &HsmRef) {
        if let Ok(mut h) = self.handles.lock() {
            h.remove(r);
        }
    }

    /// The configured slots.
    pub fn slots(&self) -> Vec<u64> {
        self.pools.keys().copied().collect()
    }

    fn pool(&self, slot: u64) -> Result<&SlotPool> {
        self.pools
            .get(&slot)
            .ok_or(HsmError::SlotNotConfigured(slot))
    }

    /// `C_GetInfo`.
    pub fn library_info(&self) -> Result<LibraryInfo> {
        let info = self
            .context
            .get_library_info()
            .map_err(|e| HsmError::Device {
                operation: "C_GetInfo",
                reason: e.to_string(),
            })?;
        let version = |v: cryptoki::types::Version| (v.major(), v.minor());
        Ok(LibraryInfo {
            cryptoki_version: version(info.cryptoki_version()),
            manufacturer: info.manufacturer_id().trim().to_owned(),
            description: info.library_description().trim().to_owned(),
            library_version: version(info.library_version()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_once() {
        assert!(HsmRef::parse("4711").is_none());
        let r = HsmRef::parse("hsm::3::root-kek")
            .expect("an HSM reference")
            .expect("well formed");
        assert_eq!(
            r,
            HsmRef {
                slot: 3,
                label: "root-kek".into()
            }
        );
        assert_eq!(r.uid(), "hsm::3::root-kek");
        assert_eq!(r.public_half().uid(), "hsm::3::root-kek_pk");
        for bad in ["hsm::", "hsm::x::l", "hsm::1::", "hsm::1"] {
            assert!(matches!(HsmRef::parse(bad), Some(Err(_))), "{bad}");
        }
    }
}
