//! RNGRetrieve: random bytes from the server's generator.

use kmip::model::{DataResponse, RngRetrieve};

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// Largest amount returned by one call.
const MAX_RANDOM: i32 = 1024 * 1024;

pub async fn rng_retrieve(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: RngRetrieve,
) -> KResult<DataResponse> {
    if request.data_length <= 0 || request.data_length > MAX_RANDOM {
        return Err(KmsError::InvalidRequest(format!(
            "DataLength must be between 1 and {MAX_RANDOM} bytes, got {}",
            request.data_length
        )));
    }
    // Checked before generating: a small request must not make the server hold gigabytes.
    let length = request.data_length as usize;
    if length > ctx.response_budget {
        return Err(KmsError::ResponseBudgetExceeded {
            max: kms.limits.max_response_size,
        });
    }
    if length > ctx.generated_budget {
        return Err(KmsError::GeneratedBudgetExceeded {
            per_byte: crate::kms::GENERATED_PER_BODY_BYTE,
        });
    }
    ctx.generated_budget -= length;
    Ok(DataResponse {
        data: kms_crypto::random_bytes(request.data_length as usize)?,
    })
}
