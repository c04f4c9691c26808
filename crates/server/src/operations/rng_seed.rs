//! RNGSeed: a client offers seed data for the server's generator (KMIP 2.1 §6.1.45).
//!
//! The server's generator is aws-lc's CTR-DRBG, seeded and reseeded from the operating system,
//! and takes no outside input: seed data from a client could only be trusted as much as that
//! client, and a server shared by many clients must not let one of them steer what the others'
//! keys are made from. The specification lets a server accept less than it is offered; this one
//! accepts none and answers a `DataLength` of 0. The request is still checked, so that a client
//! learns of a malformed call.

use kmip::model::{RngSeed, RngSeedResponse};

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// Most seed data one request may offer, as for RNGRetrieve.
const MAX_SEED: usize = 1024 * 1024;

pub async fn rng_seed(
    _kms: &Kms,
    _ctx: &mut RequestContext,
    request: RngSeed,
) -> KResult<RngSeedResponse> {
    if request.data.is_empty() || request.data.len() > MAX_SEED {
        return Err(KmsError::InvalidRequest(format!(
            "the seed Data must be between 1 and {MAX_SEED} bytes, got {}",
            request.data.len()
        )));
    }
    Ok(RngSeedResponse { data_length: 0 })
}
