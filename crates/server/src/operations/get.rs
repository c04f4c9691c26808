//! Get: the object with its key material, in the key format asked for.

use kmip::model::{Get, GetResponse, KeyMaterial, KeyValue, Object};
use kmip::{KeyFormatType, Tag, Ttlv, Value};
use kms_store::StoredObject;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn get(kms: &Kms, ctx: &mut RequestContext, request: Get) -> KResult<GetResponse> {
    let stored = kms.load(ctx, request.unique_identifier).await?;
    let object = exportable(&stored, request.key_format_type)?;
    Ok(GetResponse {
        object_type: stored.object_type,
        unique_identifier: stored.uid.into(),
        object,
    })
}

/// The object as it may leave the server, converted to `format` if given.
pub fn exportable(stored: &StoredObject, format: Option<KeyFormatType>) -> KResult<Object> {
    let mut object = stored
        .object
        .clone()
        .ok_or_else(|| KmsError::Destroyed(stored.uid.clone()))?;
    if stored.attributes.extractable() == Some(false) {
        return Err(KmsError::NotExtractable(stored.uid.clone()));
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
