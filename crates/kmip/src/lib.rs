//! KMIP: the TTLV tree, its three encodings (binary, JSON, XML) and the typed KMIP 2.1 model.
//!
//! This crate does no I/O, runs no async runtime and knows no database: it turns bytes into
//! fully-checked values and back. Everything from the network is decoded completely, with
//! size and depth limits enforced before allocation, before any other crate acts on it.

pub mod binary;
pub mod enums;
mod error;
mod generated;
pub mod json;
pub mod model;
pub mod tag;
pub mod ttlv;
pub mod v1;
pub mod xml;

pub use enums::{EnumEntry, EnumKind, KmipEnum};
pub use error::Error;
pub use generated::*;
pub use tag::Tag;
pub use ttlv::{DateTime, ItemType, Ttlv, Value};

/// Result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
