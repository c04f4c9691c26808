//! Get: the object with its key material, in the key format asked for.

use kmip::model::{Get, GetResponse, KeyMaterial, KeyValue, Object};
use kmip::{KeyFormatType, Tag, Ttlv, Value};
use kms_store::StoredObject;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn get(kms: &Kms, ctx: &mut RequestContext, request: Get) -> KResult<GetResponse> {
    let stored = kms.load(ctx, request.unique_identifier.clone()).await?;
    let object = exportable(&stored, &request)?;
    Ok(GetResponse {
        object_type: stored.object_type,
        unique_identifier: stored.uid.into(),
        object,
    })
}

/// The object as a Get or Export request asks for it: converted to the key format asked for.
/// A request for the key wrapped or compressed is refused until the server can do it: a key
/// asked for wrapped never leaves in clear.
pub fn exportable(stored: &StoredObject, request: &Get) -> KResult<Object> {
    if request.key_wrapping_specification.is_some() {
        return Err(KmsError::WrappingNotSupported(
            "Get/Export with a KeyWrappingSpecification (the key wrapped by another key)",
        ));
    }
    if request.key_compression_type.is_some() {
        return Err(KmsError::WrappingNotSupported(
            "a KeyCompressionType (compressed elliptic-curve points)",
        ));
    }
    // KeyWrapType AsRegistered or NotWrapped: this server keeps no wrapped key, so both mean
    // the plain key.
    let format = request.key_format_type;
    let mut object = stored
        .object
        .clone()
        .ok_or_else(|| KmsError::Destroyed(stored.uid.clone()))?;
    if stored.attributes.extractable() == Some(false) {
        return Err(KmsError::NotExtractable(stored.uid.clone()));
    }
    // A sensitive key may leave the server only wrapped, which it cannot do yet.
    if stored.attributes.sensitive() == Some(true) {
        return Err(KmsError::Sensitive(stored.uid.clone()));
    }
    let Some(format) = format else {
        return Ok(object);
    };
    let Some(kb) = object.key_block_mut() else {
        return Err(KmsError::KeyFormatNotSupported(format!(
            "{format:?} for a {:?}",
            stored.object_type
        )));
    };
    if kb.key_format_type == format {
        return Ok(object);
    }
    let bytes = kb.symmetric_key_bytes().map(<[u8]>::to_vec);
    let material = match (format, bytes) {
        (KeyFormatType::Raw, Some(b)) => KeyMaterial::Bytes(b),
        (KeyFormatType::TransparentSymmetricKey, Some(b)) => {
            KeyMaterial::Structure(vec![Ttlv::new(Tag::KEY, Value::ByteString(b))])
        }
        _ => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "{format:?} for this object; symmetric keys are available as Raw or TransparentSymmetricKey"
            )));
        }
    };
    if let Some(KeyValue::Plain(p)) = &mut kb.key_value {
        p.key_material = material;
    }
    kb.key_format_type = format;
    Ok(object)
}
