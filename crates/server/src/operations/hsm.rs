//! Operations on keys held in the HSM (`hsm::<slot>::<label>`), computed inside it through
//! `kms-hsm`: Create (AES), CreateKeyPair (RSA, EC P-256/384), Get/Export (public keys, and
//! secret keys the HSM lets out), GetAttributes, Destroy, Encrypt/Decrypt, Sign/SignatureVerify.
//! Locate lists HSM keys through [`locate_hsm`].
//!
//! Rights: the users of `--hsm-admin` may do everything on HSM keys; other users need a grant,
//! kept in the KMS database on a metadata-only record of the key (no material: the key stays in
//! the HSM), which the KMS writes when it creates the key, or when an admin first grants a right
//! on a key created by other tools.

use std::sync::Arc;

use kmip::model::{
    Attribute, Attributes, CreateKeyPairResponse, CreateResponse, Decrypt, DecryptResponse,
    Encrypt, EncryptResponse, ExportResponse, Get, GetAttributesResponse, GetResponse, Link,
    Object, PublicKey, RequestPayload, ResponsePayload, Sign, SignResponse, SignatureVerify,
    SignatureVerifyResponse, UidResponse, UniqueIdentifier,
};
use kmip::{
    BlockCipherMode, CryptographicAlgorithm, LinkType, ObjectType, PaddingMethod, State,
    ValidityIndicator,
};
use kms_crypto::asymmetric::{Curve, KeyKind as SoftKind, RsaEncryption, SignatureScheme};
use kms_hsm::{Cipher, Exported, Hash, Hsm, HsmObject, HsmRef, KeyKind, ObjectClass, PairKind};
use kms_store::StoredObject;

use super::asymmetric;
use crate::access::right_of;
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// The HSM of this server and who administers its keys.
pub struct HsmState {
    pub hsm: Arc<Hsm>,
    pub admins: Vec<String>,
}

impl From<kms_hsm::HsmError> for KmsError {
    fn from(e: kms_hsm::HsmError) -> KmsError {
        use kms_hsm::HsmError as H;
        match e {
            H::NotFound(uid) => KmsError::NotFound(uid),
            H::AlreadyExists(uid) => KmsError::AlreadyExists(uid),
            H::NotExtractable(uid) => KmsError::NotExtractable(format!(
                "{uid} stays inside the HSM (sensitive or not extractable)"
            )),
            H::BadReference(_) | H::SlotNotConfigured(_) => KmsError::InvalidRequest(e.to_string()),
            H::Unsupported(m) => KmsError::FeatureNotSupported(m),
            H::DecryptionFailed => KmsError::DecryptionFailed,
            other => KmsError::Hsm(other),
        }
    }
}

/// Runs a blocking HSM call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> kms_hsm::Result<T> + Send + 'static,
) -> KResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KmsError::InvalidRequest(format!("the HSM call stopped: {e}")))?
        .map_err(KmsError::from)
}

/// The HSM reference a request names (its identifier, or the batch's placeholder).
fn target(ctx: &RequestContext, uid: Option<&UniqueIdentifier>) -> Option<KResult<HsmRef>> {
    let text = match uid {
        Some(u) => u.as_text()?,
        None => ctx.placeholder.as_deref()?,
    };
    HsmRef::parse(text).map(|r| r.map_err(KmsError::from))
}

/// The HSM reference a Create or CreateKeyPair asks for in its `UniqueIdentifier` attribute.
fn requested(attributes: Option<&Attributes>) -> Option<KResult<HsmRef>> {
    attributes?.0.iter().find_map(|a| match a {
        Attribute::UniqueIdentifier(u) => {
            HsmRef::parse(u.as_text()?).map(|r| r.map_err(KmsError::from))
        }
        _ => None,
    })
}

impl Kms {
    fn hsm_admin(&self, ctx: &RequestContext) -> bool {
        self.hsm
            .as_ref()
            .is_some_and(|h| h.admins.contains(&ctx.user))
    }

    /// Admins may do everything; others need the operation granted on the key's record.
    async fn authorize_hsm(&self, ctx: &RequestContext, r: &HsmRef) -> KResult<()> {
        if self.hsm_admin(ctx) {
            return Ok(());
        }
        let uid = r.uid();
        let rights = self.store.rights(&uid, &ctx.user).await?;
        if rights.is_empty() {
            tracing::info!(request_id = %ctx.request_id, user = %ctx.user, %uid, "access denied: no right on the HSM key");
            return Err(KmsError::NotFound(uid));
        }
        let needed = ctx.operation.and_then(right_of);
        if needed.is_some_and(|n| rights.iter().any(|r| r == n)) {
            return Ok(());
        }
        Err(KmsError::PermissionDenied(format!(
            "user `{}` may not {} HSM key `{uid}`; an HSM admin can grant that right",
            ctx.user,
            needed.unwrap_or("use")
        )))
    }

    fn require_hsm_admin(&self, ctx: &RequestContext, what: &str) -> KResult<()> {
        if self.hsm_admin(ctx) {
            return Ok(());
        }
        Err(KmsError::PermissionDenied(format!(
            "only the HSM admins (--hsm-admin) {what} HSM keys; user `{}` is not one",
            ctx.user
        )))
    }

    fn hsm(&self) -> KResult<Arc<Hsm>> {
        self.hsm.as_ref().map(|h| h.hsm.clone()).ok_or_else(|| {
            KmsError::InvalidRequest(
                "this server has no HSM: start it with --hsm-model, --hsm-slot and --hsm-password"
                    .into(),
            )
        })
    }

    /// The metadata record of an HSM key, written on behalf of `owner` if missing (grants
    /// hang on it).
    pub(crate) async fn hsm_record(&self, owner: &str, r: &HsmRef) -> KResult<StoredObject> {
        let uid = r.uid();
        if let Some(o) = self.store.get(&uid).await? {
            return Ok(o);
        }
        let hsm = self.hsm()?;
        let reference = r.clone();
        let object = blocking(move || hsm.describe(&reference)).await?;
        let record = record_of(&object, owner);
        match self.store.create(record.clone()).await {
            Ok(()) | Err(kms_store::StoreError::AlreadyExists { .. }) => Ok(record),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn is_hsm_admin_of(&self, ctx: &RequestContext, uid: &str) -> bool {
        HsmRef::parse(uid).is_some() && self.hsm_admin(ctx)
    }
}

fn algorithm_of(kind: KeyKind) -> CryptographicAlgorithm {
    match kind {
        KeyKind::Aes => CryptographicAlgorithm::AES,
        KeyKind::Rsa => CryptographicAlgorithm::RSA,
        KeyKind::Ec { .. } => CryptographicAlgorithm::EC,
    }
}

fn object_type_of(class: ObjectClass) -> ObjectType {
    match class {
        ObjectClass::Secret => ObjectType::SymmetricKey,
        ObjectClass::Private => ObjectType::PrivateKey,
        ObjectClass::Public => ObjectType::PublicKey,
    }
}

/// The attributes the KMS shows for an HSM key.
fn attributes_of(o: &HsmObject) -> Attributes {
    let uid = o.reference.uid();
    let mut a = vec![
        Attribute::UniqueIdentifier(uid.clone().into()),
        Attribute::ObjectType(object_type_of(o.class)),
        Attribute::CryptographicAlgorithm(algorithm_of(o.kind)),
        Attribute::CryptographicLength(i32::try_from(o.bits).unwrap_or(0)),
        Attribute::State(State::Active),
        Attribute::Sensitive(!o.extractable),
        Attribute::Extractable(o.extractable),
        Attribute::Name(kmip::model::Name {
            name_value: o.reference.label.clone(),
            name_type: kmip::NameType::UninterpretedTextString,
        }),
    ];
    let linked = match o.class {
        ObjectClass::Private => Some((LinkType::PublicKeyLink, o.reference.public_half())),
        ObjectClass::Public => o.reference.label.strip_suffix("_pk").map(|l| {
            (
                LinkType::PrivateKeyLink,
                HsmRef {
                    slot: o.reference.slot,
                    label: l.to_owned(),
                },
            )
        }),
        ObjectClass::Secret => None,
    };
    if let Some((link_type, other)) = linked {
        a.push(Attribute::Link(Link {
            link_type,
            linked_object_identifier: other.uid().into(),
        }));
    }
    Attributes(a)
}

/// A metadata-only record of an HSM key in the KMS database.
fn record_of(o: &HsmObject, owner: &str) -> StoredObject {
    StoredObject {
        uid: o.reference.uid(),
        object_type: object_type_of(o.class),
        object: None,
        attributes: attributes_of(o),
        state: State::Active,
        owner: owner.to_owned(),
        tags: vec![],
        revision: 0,
        schedules: Default::default(),
    }
}

/// The HSM key `payload` addresses, if it addresses one (an error when it names one badly).
pub fn addressed(ctx: &RequestContext, payload: &RequestPayload) -> Option<KResult<HsmRef>> {
    match payload {
        RequestPayload::Create(p) => requested(Some(&p.attributes)),
        RequestPayload::CreateKeyPair(p) => requested(p.private_key_attributes.as_ref())
            .or_else(|| requested(p.common_attributes.as_ref())),
        RequestPayload::Locate(_) | RequestPayload::Query(_) => None,
        other => target(ctx, uid_of(other)),
    }
}

/// Runs `payload` on the HSM key `r` it addresses (see [`addressed`]).
pub async fn run(
    kms: &Kms,
    ctx: &mut RequestContext,
    r: HsmRef,
    payload: RequestPayload,
) -> KResult<ResponsePayload> {
    let answer = match payload {
        RequestPayload::Create(p) => {
            ResponsePayload::Create(create(kms, ctx, &r, &p.object_type, &p.attributes).await?)
        }
        RequestPayload::CreateKeyPair(p) => {
            ResponsePayload::CreateKeyPair(create_key_pair(kms, ctx, &r, &p).await?)
        }
        RequestPayload::Get(p) => {
            kms.authorize_hsm(ctx, &r).await?;
            let (object_type, object) = export(kms, &r, &p).await?;
            ResponsePayload::Get(GetResponse {
                object_type,
                unique_identifier: r.uid().into(),
                object,
            })
        }
        RequestPayload::Export(p) => {
            kms.authorize_hsm(ctx, &r).await?;
            let (object_type, object) = export(kms, &r, &p).await?;
            let hsm = kms.hsm()?;
            let reference = r.clone();
            let described = blocking(move || hsm.describe(&reference)).await?;
            ResponsePayload::Export(ExportResponse {
                object_type,
                unique_identifier: r.uid().into(),
                attributes: attributes_of(&described),
                object,
            })
        }
        RequestPayload::GetAttributes(_) => {
            kms.authorize_hsm(ctx, &r).await?;
            let hsm = kms.hsm()?;
            let reference = r.clone();
            let described = blocking(move || hsm.describe(&reference)).await?;
            ResponsePayload::GetAttributes(GetAttributesResponse {
                unique_identifier: r.uid().into(),
                attributes: attributes_of(&described),
            })
        }
        RequestPayload::Destroy(_) => {
            kms.require_hsm_admin(ctx, "destroy")?;
            let hsm = kms.hsm()?;
            let reference = r.clone();
            blocking(move || hsm.destroy(&reference)).await?;
            match kms.store.delete(&r.uid()).await {
                Ok(()) | Err(kms_store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(request_id = %ctx.request_id, user = %ctx.user, uid = %r.uid(), "HSM key destroyed");
            ResponsePayload::Destroy(UidResponse {
                unique_identifier: r.uid().into(),
            })
        }
        RequestPayload::Encrypt(p) => {
            kms.authorize_hsm(ctx, &r).await?;
            ResponsePayload::Encrypt(encrypt(kms, &r, p).await?)
        }
        RequestPayload::Decrypt(p) => {
            kms.authorize_hsm(ctx, &r).await?;
            ResponsePayload::Decrypt(decrypt(kms, &r, p).await?)
        }
        RequestPayload::Sign(p) => {
            kms.authorize_hsm(ctx, &r).await?;
            ResponsePayload::Sign(sign(kms, &r, p).await?)
        }
        RequestPayload::SignatureVerify(p) => {
            kms.authorize_hsm(ctx, &r).await?;
            ResponsePayload::SignatureVerify(verify(kms, &r, p).await?)
        }
        other => {
            return Err(KmsError::OperationNotSupported(format!(
                "{:?} on an HSM key; HSM keys support Create, CreateKeyPair, Get, Export, \
                 GetAttributes, Locate, Destroy, Encrypt, Decrypt, Sign and SignatureVerify",
                other.operation()
            )));
        }
    };
    ctx.placeholder = Some(r.uid());
    Ok(answer)
}

/// The identifier an operation names, for the operations that name one.
fn uid_of(payload: &RequestPayload) -> Option<&UniqueIdentifier> {
    match payload {
        RequestPayload::Get(p) | RequestPayload::Export(p) => p.unique_identifier.as_ref(),
        RequestPayload::GetAttributes(p) => p.unique_identifier.as_ref(),
        RequestPayload::GetAttributeList(p)
        | RequestPayload::Activate(p)
        | RequestPayload::Archive(p)
        | RequestPayload::Recover(p) => p.unique_identifier.as_ref(),
        RequestPayload::Destroy(p) => p.unique_identifier.as_ref(),
        RequestPayload::Revoke(p) => p.unique_identifier.as_ref(),
        RequestPayload::Encrypt(p) => p.unique_identifier.as_ref(),
        RequestPayload::Decrypt(p) => p.unique_identifier.as_ref(),
        RequestPayload::Sign(p) => p.unique_identifier.as_ref(),
        RequestPayload::SignatureVerify(p) => p.unique_identifier.as_ref(),
        RequestPayload::AddAttribute(p) | RequestPayload::SetAttribute(p) => {
            p.unique_identifier.as_ref()
        }
        RequestPayload::ModifyAttribute(p) => p.unique_identifier.as_ref(),
        RequestPayload::DeleteAttribute(p) => p.unique_identifier.as_ref(),
        RequestPayload::MAC(p) => p.unique_identifier.as_ref(),
        RequestPayload::ReKey(p) => p.unique_identifier.as_ref(),
        _ => None,
    }
}

async fn create(
    kms: &Kms,
    ctx: &RequestContext,
    r: &HsmRef,
    object_type: &ObjectType,
    attributes: &Attributes,
) -> KResult<CreateResponse> {
    kms.require_hsm_admin(ctx, "create")?;
    if *object_type != ObjectType::SymmetricKey
        || attributes
            .cryptographic_algorithm()
            .is_some_and(|a| a != CryptographicAlgorithm::AES)
    {
        return Err(KmsError::FeatureNotSupported(
            "symmetric keys in the HSM are AES keys".into(),
        ));
    }
    let bits = u32::try_from(attributes.cryptographic_length().unwrap_or(256)).unwrap_or(0);
    let extractable =
        attributes.extractable().unwrap_or(false) && !attributes.sensitive().unwrap_or(false);
    let hsm = kms.hsm()?;
    let reference = r.clone();
    blocking(move || hsm.create_aes(&reference, bits, extractable)).await?;
    let mut record = kms.hsm_record(&ctx.user, r).await?;
    let tags = attributes.user_tags()?;
    if !tags.is_empty() {
        record.tags = tags;
        kms.store.update(record).await?;
    }
    tracing::info!(request_id = %ctx.request_id, user = %ctx.user, uid = %r.uid(), bits, "HSM AES key created");
    Ok(CreateResponse {
        object_type: ObjectType::SymmetricKey,
        unique_identifier: r.uid().into(),
    })
}

async fn create_key_pair(
    kms: &Kms,
    ctx: &RequestContext,
    r: &HsmRef,
    p: &kmip::model::CreateKeyPair,
) -> KResult<CreateKeyPairResponse> {
    kms.require_hsm_admin(ctx, "create")?;
    let mut merged = p.common_attributes.clone().unwrap_or_default();
    if let Some(private) = &p.private_key_attributes {
        for a in &private.0 {
            merged.set(a.clone());
        }
    }
    let (kind, bits) = asymmetric::kind_for_create(&merged)?;
    let pair = match kind {
        SoftKind::Rsa => PairKind::Rsa { bits },
        SoftKind::Ec(Curve::P256) => PairKind::Ec { bits: 256 },
        SoftKind::Ec(Curve::P384) => PairKind::Ec { bits: 384 },
        other => {
            return Err(KmsError::FeatureNotSupported(format!(
                "{} key pairs cannot be created in the HSM: RSA 2048-4096 and EC P-256/P-384 can",
                other.name()
            )));
        }
    };
    let extractable = merged.extractable().unwrap_or(false) && !merged.sensitive().unwrap_or(false);
    let hsm = kms.hsm()?;
    let reference = r.clone();
    blocking(move || hsm.create_key_pair(&reference, pair, extractable)).await?;
    kms.hsm_record(&ctx.user, r).await?;
    kms.hsm_record(&ctx.user, &r.public_half()).await?;
    tracing::info!(request_id = %ctx.request_id, user = %ctx.user, uid = %r.uid(), "HSM key pair created");
    Ok(CreateKeyPairResponse {
        private_key_unique_identifier: r.uid().into(),
        public_key_unique_identifier: r.public_half().uid().into(),
    })
}

fn soft_kind(o: &HsmObject) -> KResult<SoftKind> {
    Ok(match o.kind {
        KeyKind::Rsa => SoftKind::Rsa,
        KeyKind::Ec { bits: 256 } => SoftKind::Ec(Curve::P256),
        KeyKind::Ec { bits: 384 } => SoftKind::Ec(Curve::P384),
        _ => {
            return Err(KmsError::FeatureNotSupported(format!(
                "{} is not an RSA or EC key",
                o.reference.uid()
            )));
        }
    })
}

/// The key material the HSM lets out, as a KMIP object.
async fn export(kms: &Kms, r: &HsmRef, p: &Get) -> KResult<(ObjectType, Object)> {
    let hsm = kms.hsm()?;
    let reference = r.clone();
    let (described, exported) = blocking(move || {
        let d = hsm.describe(&reference)?;
        if d.class == ObjectClass::Private {
            return Err(kms_hsm::HsmError::NotExtractable(reference.uid()));
        }
        Ok((d, hsm.export(&reference)?))
    })
    .await?;
    match exported {
        Exported::Secret(bytes) => Ok((
            ObjectType::SymmetricKey,
            Object::symmetric_key(
                CryptographicAlgorithm::AES,
                i32::try_from(bytes.len() * 8).unwrap_or(0),
                bytes.to_vec(),
            ),
        )),
        Exported::Public(public) => {
            let kind = soft_kind(&described)?;
            let spki = match public {
                kms_hsm::PublicKey::Rsa { modulus, exponent } => {
                    kms_crypto::asymmetric::encoding::rsa_public_from_components(
                        &modulus, &exponent,
                    )?
                }
                kms_hsm::PublicKey::Ec { point, .. } => {
                    kms_crypto::asymmetric::encoding::public_from_raw(kind, &point)?
                }
            };
            let format = p
                .key_format_type
                .unwrap_or_else(|| asymmetric::public_format(kind));
            let material = asymmetric::public_material(kind, &spki, format)?;
            Ok((
                ObjectType::PublicKey,
                Object::PublicKey(PublicKey {
                    key_block: asymmetric::key_block(
                        format,
                        material,
                        asymmetric::algorithm_of(kind),
                        described.bits,
                    ),
                }),
            ))
        }
    }
}

fn hash_of(h: kms_crypto::HashAlgorithm) -> KResult<Hash> {
    Ok(match h {
        kms_crypto::HashAlgorithm::Sha1 => Hash::Sha1,
        kms_crypto::HashAlgorithm::Sha256 => Hash::Sha256,
        kms_crypto::HashAlgorithm::Sha384 => Hash::Sha384,
        kms_crypto::HashAlgorithm::Sha512 => Hash::Sha512,
        other => {
            return Err(KmsError::BadCryptographicParameters(format!(
                "the HSM works with SHA-1, SHA-256, SHA-384 or SHA-512, not {other:?}"
            )));
        }
    })
}

/// What the HSM computes for an Encrypt or Decrypt on `o`, from the request's parameters.
enum Plan {
    Gcm { tag_len: usize },
    Cbc,
    Rsa(RsaPlan),
}

enum RsaPlan {
    Oaep(Hash),
    Pkcs1v15,
}

fn plan(o: &HsmObject, params: Option<&kmip::model::CryptographicParameters>) -> KResult<Plan> {
    let default = kmip::model::CryptographicParameters::default();
    let params = params.unwrap_or(&default);
    match o.kind {
        KeyKind::Aes => match params.block_cipher_mode {
            None | Some(BlockCipherMode::GCM) => Ok(Plan::Gcm {
                tag_len: params.tag_length.map_or(16, |t| t.clamp(0, 16) as usize),
            }),
            Some(BlockCipherMode::CBC)
                if matches!(params.padding_method, None | Some(PaddingMethod::PKCS5)) =>
            {
                Ok(Plan::Cbc)
            }
            Some(other) => Err(KmsError::BadCryptographicParameters(format!(
                "HSM AES keys encrypt in GCM or CBC (PKCS#5 padding), not {other:?}"
            ))),
        },
        KeyKind::Rsa => Ok(Plan::Rsa(match asymmetric::rsa_encryption(params)? {
            RsaEncryption::Oaep { hash, mgf1, label } => {
                if mgf1 != hash || !label.is_empty() {
                    return Err(KmsError::BadCryptographicParameters(
                        "HSM RSA-OAEP uses MGF1 with the same hash and no label".into(),
                    ));
                }
                RsaPlan::Oaep(hash_of(hash)?)
            }
            RsaEncryption::Pkcs1v15 => RsaPlan::Pkcs1v15,
        })),
        KeyKind::Ec { .. } => Err(KmsError::FeatureNotSupported(
            "HSM EC keys sign; they do not encrypt".into(),
        )),
    }
}

async fn describe(kms: &Kms, r: &HsmRef) -> KResult<HsmObject> {
    let hsm = kms.hsm()?;
    let reference = r.clone();
    blocking(move || hsm.describe(&reference)).await
}

async fn encrypt(kms: &Kms, r: &HsmRef, p: Encrypt) -> KResult<EncryptResponse> {
    let o = describe(kms, r).await?;
    let plan = plan(&o, p.cryptographic_parameters.as_ref())?;
    let data = p
        .data
        .ok_or_else(|| KmsError::MissingData("Encrypt needs Data".into()))?;
    let aad = p
        .authenticated_encryption_additional_data
        .unwrap_or_default();
    let iv = match (&plan, p.iv_counter_nonce.filter(|v| !v.is_empty())) {
        (Plan::Rsa(_), _) => None,
        (_, Some(iv)) => Some(iv),
        (Plan::Gcm { .. }, None) => Some(kms_crypto::random_bytes(12)?),
        (Plan::Cbc, None) => Some(kms_crypto::random_bytes(16)?),
    };
    let hsm = kms.hsm()?;
    let reference = r.clone();
    let iv_in = iv.clone();
    let (out, tag) = blocking(move || {
        let iv = iv_in.unwrap_or_default();
        match plan {
            Plan::Gcm { tag_len } => {
                let mut out = hsm.encrypt(
                    &reference,
                    Cipher::AesGcm {
                        iv: &iv,
                        aad: &aad,
                        tag_len,
                    },
                    &data,
                )?;
                let tag = out.split_off(out.len().saturating_sub(tag_len));
                Ok((out, Some(tag)))
            }
            Plan::Cbc => {
                let iv: [u8; 16] = iv.as_slice().try_into().map_err(|_| {
                    kms_hsm::HsmError::Unsupported("AES-CBC takes a 16-byte IV".into())
                })?;
                Ok((
                    hsm.encrypt(&reference, Cipher::AesCbcPad { iv }, &data)?,
                    None,
                ))
            }
            Plan::Rsa(rsa) => Ok((hsm.encrypt(&reference, rsa_cipher(&rsa), &data)?, None)),
        }
    })
    .await?;
    Ok(EncryptResponse {
        unique_identifier: r.uid().into(),
        data: Some(out),
        iv_counter_nonce: iv,
        correlation_value: None,
        authenticated_encryption_tag: tag,
    })
}

fn rsa_cipher(rsa: &RsaPlan) -> Cipher<'static> {
    match rsa {
        RsaPlan::Oaep(hash) => Cipher::RsaOaep {
            hash: *hash,
            label: &[],
        },
        RsaPlan::Pkcs1v15 => Cipher::RsaPkcs1v15,
    }
}

async fn decrypt(kms: &Kms, r: &HsmRef, p: Decrypt) -> KResult<DecryptResponse> {
    let o = describe(kms, r).await?;
    let plan = plan(&o, p.cryptographic_parameters.as_ref())?;
    let data = p
        .data
        .ok_or_else(|| KmsError::MissingData("Decrypt needs Data".into()))?;
    let aad = p
        .authenticated_encryption_additional_data
        .unwrap_or_default();
    let iv = p.iv_counter_nonce.unwrap_or_default();
    let tag = p.authenticated_encryption_tag.unwrap_or_default();
    let hsm = kms.hsm()?;
    let reference = r.clone();
    let plain = blocking(move || match plan {
        Plan::Gcm { .. } => {
            let mut input = data;
            input.extend_from_slice(&tag);
            hsm.decrypt(
                &reference,
                Cipher::AesGcm {
                    iv: &iv,
                    aad: &aad,
                    tag_len: tag.len(),
                },
                &input,
            )
        }
        Plan::Cbc => {
            let iv: [u8; 16] = iv
                .as_slice()
                .try_into()
                .map_err(|_| kms_hsm::HsmError::Unsupported("AES-CBC takes a 16-byte IV".into()))?;
            hsm.decrypt(&reference, Cipher::AesCbcPad { iv }, &data)
        }
        Plan::Rsa(rsa) => hsm.decrypt(&reference, rsa_cipher(&rsa), &data),
    })
    .await?;
    Ok(DecryptResponse {
        unique_identifier: r.uid().into(),
        data: Some(plain.to_vec()),
        correlation_value: None,
    })
}

fn scheme_of(
    o: &HsmObject,
    params: Option<&kmip::model::CryptographicParameters>,
) -> KResult<kms_hsm::Signature> {
    let default = kmip::model::CryptographicParameters::default();
    let scheme = asymmetric::signature_scheme(soft_kind(o)?, params.unwrap_or(&default))?;
    Ok(match scheme {
        SignatureScheme::RsaPss { hash, salt } => {
            let h = hash_of(hash)?;
            if salt.is_some_and(|s| usize::from(s) != hash.output_len()) {
                return Err(KmsError::BadCryptographicParameters(
                    "HSM RSA-PSS signatures use a salt as long as the digest".into(),
                ));
            }
            kms_hsm::Signature::RsaPss(h)
        }
        SignatureScheme::RsaPkcs1v15(hash) => kms_hsm::Signature::RsaPkcs1v15(hash_of(hash)?),
        SignatureScheme::Ecdsa(hash) => kms_hsm::Signature::Ecdsa(hash_of(hash)?),
        _ => {
            return Err(KmsError::FeatureNotSupported(
                "HSM keys sign with RSA-PSS, RSA PKCS#1 v1.5 or ECDSA".into(),
            ));
        }
    })
}

async fn sign(kms: &Kms, r: &HsmRef, p: Sign) -> KResult<SignResponse> {
    if p.init_indicator.is_some() || p.final_indicator.is_some() || p.digested_data.is_some() {
        return Err(KmsError::FeatureNotSupported(
            "HSM keys sign whole messages in one request (no digest, no streaming)".into(),
        ));
    }
    let o = describe(kms, r).await?;
    let scheme = scheme_of(&o, p.cryptographic_parameters.as_ref())?;
    let data = p
        .data
        .ok_or_else(|| KmsError::MissingData("Sign needs Data".into()))?;
    let hsm = kms.hsm()?;
    let reference = r.clone();
    let signature = blocking(move || hsm.sign(&reference, scheme, &data)).await?;
    Ok(SignResponse {
        unique_identifier: r.uid().into(),
        signature_data: Some(signature),
        correlation_value: None,
    })
}

async fn verify(kms: &Kms, r: &HsmRef, p: SignatureVerify) -> KResult<SignatureVerifyResponse> {
    if p.init_indicator.is_some() || p.final_indicator.is_some() || p.digested_data.is_some() {
        return Err(KmsError::FeatureNotSupported(
            "HSM keys verify whole messages in one request (no digest, no streaming)".into(),
        ));
    }
    let o = describe(kms, r).await?;
    let scheme = scheme_of(&o, p.cryptographic_parameters.as_ref())?;
    let data = p
        .data
        .ok_or_else(|| KmsError::MissingData("SignatureVerify needs Data".into()))?;
    let signature = p
        .signature_data
        .ok_or_else(|| KmsError::MissingData("SignatureVerify needs SignatureData".into()))?;
    let hsm = kms.hsm()?;
    let reference = r.clone();
    let valid = blocking(move || hsm.verify(&reference, scheme, &data, &signature)).await?;
    Ok(SignatureVerifyResponse {
        unique_identifier: r.uid().into(),
        validity_indicator: if valid {
            ValidityIndicator::Valid
        } else {
            ValidityIndicator::Invalid
        },
        data: None,
        correlation_value: None,
    })
}

/// The HSM keys a Locate adds for an HSM admin (other users find the keys granted to them
/// through their records in the database): every key of the configured slots that matches.
pub async fn locate_hsm(
    kms: &Kms,
    ctx: &RequestContext,
    query: &kms_store::LocateQuery,
) -> KResult<Vec<String>> {
    if !kms.hsm_admin(ctx) {
        return Ok(Vec::new());
    }
    let hsm = kms.hsm()?;
    let objects = blocking(move || hsm.list()).await?;
    let unconstrained = kms_store::LocateQuery {
        visible_to: None,
        owner: None,
        ..query.clone()
    };
    Ok(objects
        .iter()
        .map(|o| record_of(o, &ctx.user))
        .filter(|record| unconstrained.matches(record))
        .map(|record| record.uid)
        .collect())
}
