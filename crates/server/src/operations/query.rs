//! Query: which operations and object types the server supports, and who it is.

use kmip::model::{Query, QueryResponse};
use kmip::{ObjectType, QueryFunction, Tag, Ttlv, Value};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

pub async fn query(kms: &Kms, _ctx: &mut RequestContext, request: Query) -> KResult<QueryResponse> {
    let wants = |f: QueryFunction| request.query_function.contains(&f);
    Ok(QueryResponse {
        operation: if wants(QueryFunction::QueryOperations) {
            super::SUPPORTED.to_vec()
        } else {
            vec![]
        },
        object_type: if wants(QueryFunction::QueryObjects) {
            vec![
                ObjectType::SymmetricKey,
                ObjectType::SecretData,
                ObjectType::OpaqueObject,
            ]
        } else {
            vec![]
        },
        vendor_identification: wants(QueryFunction::QueryServerInformation)
            .then(|| kms.vendor.clone()),
        server_information: wants(QueryFunction::QueryServerInformation).then(|| {
            Ttlv::structure(
                Tag::SERVER_INFORMATION,
                vec![
                    Ttlv::new(Tag::SERVER_NAME, Value::TextString("kms-server".into())),
                    Ttlv::new(
                        Tag::SERVER_VERSION,
                        Value::TextString(env!("CARGO_PKG_VERSION").into()),
                    ),
                ],
            )
        }),
        application_namespace: vec![],
        extension_information: vec![],
        attestation_type: vec![],
        rng_parameters: vec![],
        profile_information: vec![],
        validation_information: vec![],
        capability_information: vec![],
        client_registration_method: vec![],
        defaults_information: None,
        protection_storage_masks: vec![],
    })
}
