//! Interop: the test-harness operation of the OASIS test cases (Begin, End, Reset). There is
//! nothing to do; the server answers with an empty payload.

use kmip::{Tag, Ttlv};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

pub async fn interop(_kms: &Kms, _ctx: &mut RequestContext, _request: Ttlv) -> KResult<Ttlv> {
    Ok(Ttlv::structure(Tag::RESPONSE_PAYLOAD, vec![]))
}
