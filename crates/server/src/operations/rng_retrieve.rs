//! RNGRetrieve: random bytes from the server's generator.

use kmip::model::{DataResponse, RngRetrieve};

use crate::error::{KResult, KmsError};

/// Largest amount returned by one call.
const MAX_RANDOM: i32 = 1024 * 1024;

pub fn rng_retrieve(request: RngRetrieve) -> KResult<DataResponse> {
    if request.data_length <= 0 || request.data_length > MAX_RANDOM {
        return Err(KmsError::InvalidRequest(format!(
            "DataLength must be between 1 and {MAX_RANDOM} bytes, got {}",
            request.data_length
        )));
    }
    Ok(DataResponse {
        data: kms_crypto::random_bytes(request.data_length as usize)?,
    })
}
