//! Hash: a digest of the data given.

use kmip::model::{Hash, HashResponse};

use super::symmetric::hash_algorithm;
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn hash(_kms: &Kms, _ctx: &mut RequestContext, request: Hash) -> KResult<HashResponse> {
    let alg = request
        .cryptographic_parameters
        .hashing_algorithm
        .ok_or_else(|| {
            KmsError::MissingData(
                "Hash needs CryptographicParameters with a HashingAlgorithm".into(),
            )
        })?;
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("Hash needs Data".into()))?;
    let digest = kms_crypto::hash(hash_algorithm(alg)?, &data)?;
    Ok(HashResponse {
        data: Some(digest),
        correlation_value: None,
    })
}
