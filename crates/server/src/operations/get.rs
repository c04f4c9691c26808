//! Get: the object with its key material, in the key format asked for.

use kmip::model::{Get, GetResponse, KeyMaterial, KeyValue, Object};
use kmip::{KeyFormatType, Tag, Ttlv, Value};
use kms_store::StoredObject;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn get(kms: &Kms, ctx: &mut RequestContext, request: Get) -> KResult<GetResponse> {
    let stored = kms.load(ctx, request.unique_identifier.clone()).await?;
    let object = served_object(kms, ctx, &stored, &request).await?;
    Ok(GetResponse {
        object_type: stored.object_type,
        unique_identifier: stored.uid.into(),
        object,
    })
}

/// The object as a Get or Export request asks for it: converted to the key format asked for.
/// A request for the key wrapped or compressed is refused until the server can do it: a key
/// asked for wrapped never leaves in clear.
/// A key served to a client is no longer `Fresh` (KMIP 2.1 §4.19): the attribute turns false
/// the first time, with one write.
pub async fn served(kms: &Kms, ctx: &mut RequestContext, stored: &StoredObject) -> KResult<()> {
    if stored
        .attributes
        .0
        .iter()
        .any(|a| matches!(a, kmip::model::Attribute::Fresh(true)))
    {
        kms.modify(ctx, Some(stored.uid.clone().into()), |object| {
            object.attributes.set(kmip::model::Attribute::Fresh(false));
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The object as Get and Export serve it: in the format asked, wrapped when asked (never
/// in the clear then), unwrapped when asked, and no longer `Fresh`.
pub async fn served_object(
    kms: &Kms,
    ctx: &mut RequestContext,
    stored: &StoredObject,
    request: &Get,
) -> KResult<Object> {
    if request.key_format_type == Some(KeyFormatType::PKCS_12) {
        if stored.attributes.extractable() == Some(false) {
            return Err(KmsError::NotExtractable(stored.uid.clone()));
        }
        let object = super::pkcs12::export(kms, ctx, stored, request).await?;
        served(kms, ctx, stored).await?;
        return Ok(object);
    }
    let mut object = exportable(stored, request)?;
    if request.key_wrap_type == Some(kmip::KeyWrapType::NotWrapped)
        && super::wrapping::is_wrapped(&object)
    {
        super::wrapping::unwrap(kms, ctx, &stored.uid, &mut object).await?;
        convert(stored, &mut object, request.key_format_type)?;
    }
    if let Some(spec) = &request.key_wrapping_specification {
        super::wrapping::wrap(kms, ctx, &stored.uid, &mut object, spec).await?;
    }
    served(kms, ctx, stored).await?;
    Ok(object)
}

pub fn exportable(stored: &StoredObject, request: &Get) -> KResult<Object> {
    if request.key_compression_type.is_some() {
        return Err(KmsError::WrappingNotSupported(
            "a KeyCompressionType (compressed elliptic-curve points)",
        ));
    }
    let format = request.key_format_type;
    let mut object = stored
        .object
        .clone()
        .ok_or_else(|| KmsError::Destroyed(stored.uid.clone()))?;
    if stored.attributes.extractable() == Some(false) {
        return Err(KmsError::NotExtractable(stored.uid.clone()));
    }
    // A sensitive key leaves the server only wrapped.
    if stored.attributes.sensitive() == Some(true) && request.key_wrapping_specification.is_none() {
        return Err(KmsError::Sensitive(stored.uid.clone()));
    }
    if super::wrapping::is_wrapped(&object) {
        // Served as registered; converted after unwrapping when asked for NotWrapped.
        return Ok(object);
    }
    convert(stored, &mut object, format)?;
    Ok(object)
}

/// Converts the key block of `object` to `format` (unchanged when `None`).
fn convert(
    stored: &StoredObject,
    object: &mut Object,
    format: Option<KeyFormatType>,
) -> KResult<()> {
    let Some(format) = format else {
        return Ok(());
    };
    // A certificate is its DER: asking it as X.509 is asking it as it is.
    if matches!(object, Object::Certificate(_)) && format == KeyFormatType::X_509 {
        return Ok(());
    }
    let Some(kb) = object.key_block_mut() else {
        return Err(KmsError::KeyFormatNotSupported(format!(
            "{format:?} for a {:?}",
            stored.object_type
        )));
    };
    if kb.key_format_type == format {
        return Ok(());
    }
    if matches!(
        stored.object_type,
        kmip::ObjectType::PrivateKey | kmip::ObjectType::PublicKey
    ) {
        return super::asymmetric::convert(stored.object_type, kb, format);
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
    Ok(())
}
