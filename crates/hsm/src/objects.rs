//! The objects of an HSM and what the KMS does with them: find, create (AES keys, RSA and EC key
//! pairs), describe, export what the HSM lets out, destroy, and encrypt, decrypt, sign and verify
//! inside the HSM. A key pair created as `label` has its public key at `label_pk`.

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass as Pk11Class, ObjectHandle};
use cryptoki::session::Session;
use zeroize::Zeroizing;

use crate::{Hsm, HsmError, HsmRef, Result};

pub(crate) fn device(operation: &'static str, e: Error) -> HsmError {
    HsmError::Device {
        operation,
        reason: e.to_string(),
    }
}

/// What kind of key an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Aes,
    Rsa,
    /// NIST P-256 or P-384, by their bit size.
    Ec {
        bits: u32,
    },
}

/// Which half, or a secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectClass {
    Secret,
    Private,
    Public,
}

/// An HSM object as the KMS describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmObject {
    pub reference: HsmRef,
    pub class: ObjectClass,
    pub kind: KeyKind,
    /// Key length (AES), modulus length (RSA) or curve size (EC), in bits.
    pub bits: u32,
    /// Whether the HSM lets the key material out (public keys always).
    pub extractable: bool,
}

/// A key pair to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairKind {
    Rsa { bits: u32 },
    Ec { bits: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn mechanism(self) -> MechanismType {
        match self {
            Hash::Sha1 => MechanismType::SHA1,
            Hash::Sha256 => MechanismType::SHA256,
            Hash::Sha384 => MechanismType::SHA384,
            Hash::Sha512 => MechanismType::SHA512,
        }
    }

    fn mgf(self) -> PkcsMgfType {
        match self {
            Hash::Sha1 => PkcsMgfType::MGF1_SHA1,
            Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
            Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
            Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Hash::Sha1 => kms_crypto::HashAlgorithm::Sha1,
            Hash::Sha256 => kms_crypto::HashAlgorithm::Sha256,
            Hash::Sha384 => kms_crypto::HashAlgorithm::Sha384,
            Hash::Sha512 => kms_crypto::HashAlgorithm::Sha512,
        };
        // These four hashes cannot fail.
        kms_crypto::hash(alg, data).unwrap_or_default()
    }

    fn len(self) -> u64 {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// An encryption inside the HSM.
#[derive(Clone, Copy, Debug)]
pub enum Cipher<'a> {
    /// The ciphertext is followed by a tag of `tag_len` bytes.
    AesGcm {
        iv: &'a [u8],
        aad: &'a [u8],
        tag_len: usize,
    },
    /// PKCS#7 padding.
    AesCbcPad {
        iv: [u8; 16],
    },
    RsaOaep {
        hash: Hash,
        label: &'a [u8],
    },
    RsaPkcs1v15,
}

/// A signature inside the HSM, on the message (the HSM hashes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// Salt as long as the digest.
    RsaPss(Hash),
    RsaPkcs1v15(Hash),
    /// DER `ECDSA-Sig-Value`, as X.509 and the KMS's software keys use.
    Ecdsa(Hash),
}

/// A public key's components, for the caller to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// The uncompressed point.
    Ec {
        bits: u32,
        point: Vec<u8>,
    },
}

/// What an export gives.
pub enum Exported {
    Secret(Zeroizing<Vec<u8>>),
    Public(PublicKey),
}

const P256_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

fn curve_oid(bits: u32) -> Result<&'static [u8]> {
    match bits {
        256 => Ok(P256_OID),
        384 => Ok(P384_OID),
        other => Err(HsmError::Unsupported(format!(
            "EC keys in the HSM are P-256 or P-384, not {other} bits"
        ))),
    }
}

fn curve_bits(oid: &[u8]) -> Option<u32> {
    match oid {
        P256_OID => Some(256),
        P384_OID => Some(384),
        _ => None,
    }
}

fn class_of(c: Pk11Class) -> Option<ObjectClass> {
    match c {
        Pk11Class::SECRET_KEY => Some(ObjectClass::Secret),
        Pk11Class::PRIVATE_KEY => Some(ObjectClass::Private),
        Pk11Class::PUBLIC_KEY => Some(ObjectClass::Public),
        _ => None,
    }
}

/// Every key object of the session's token with `label` (any label when `None`).
fn find(session: &Session, label: Option<&str>) -> std::result::Result<Vec<ObjectHandle>, Error> {
    let mut out = Vec::new();
    for class in [
        Pk11Class::SECRET_KEY,
        Pk11Class::PRIVATE_KEY,
        Pk11Class::PUBLIC_KEY,
    ] {
        let mut template = vec![Attribute::Token(true), Attribute::Class(class)];
        if let Some(l) = label {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        out.extend(session.find_objects(&template)?);
    }
    Ok(out)
}

/// Describes one object (`None`: not a key the KMS knows how to use).
fn describe(
    session: &Session,
    slot: u64,
    handle: ObjectHandle,
) -> std::result::Result<Option<HsmObject>, Error> {
    let attributes = session.get_attributes(
        handle,
        &[
            AttributeType::Class,
            AttributeType::KeyType,
            AttributeType::Label,
            AttributeType::ValueLen,
            AttributeType::ModulusBits,
            AttributeType::Modulus,
            AttributeType::EcParams,
            AttributeType::Extractable,
            AttributeType::Sensitive,
        ],
    )?;
    let (mut class, mut key_type, mut label) = (None, None, None);
    let (mut value_len, mut modulus_bits, mut curve) = (None, None, None);
    let (mut extractable, mut sensitive) = (false, true);
    for a in attributes {
        match a {
            Attribute::Class(c) => class = class_of(c),
            Attribute::KeyType(k) => key_type = Some(k),
            Attribute::Label(l) => label = String::from_utf8(l).ok(),
            Attribute::ValueLen(v) => value_len = Some(u64::from(v) as u32 * 8),
            Attribute::ModulusBits(b) => modulus_bits = Some(u64::from(b) as u32),
            Attribute::Modulus(m) if modulus_bits.is_none() => {
                modulus_bits = Some((m.iter().skip_while(|b| **b == 0).count() as u32) * 8)
            }
            Attribute::EcParams(p) => curve = curve_bits(&p),
            Attribute::Extractable(e) => extractable = e,
            Attribute::Sensitive(s) => sensitive = s,
            _ => {}
        }
    }
    let (Some(class), Some(key_type), Some(label)) = (class, key_type, label) else {
        return Ok(None);
    };
    let (kind, bits) = match key_type {
        KeyType::AES => (KeyKind::Aes, value_len.unwrap_or(0)),
        KeyType::RSA => (KeyKind::Rsa, modulus_bits.unwrap_or(0)),
        KeyType::EC => match curve {
            Some(bits) => (KeyKind::Ec { bits }, bits),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(HsmObject {
        reference: HsmRef { slot, label },
        class,
        kind,
        bits,
        extractable: class == ObjectClass::Public || (extractable && !sensitive),
    }))
}

/// The one object with this reference's label.
fn one(
    session: &Session,
    r: &HsmRef,
) -> std::result::Result<Option<(ObjectHandle, HsmObject)>, Error> {
    for handle in find(session, Some(&r.label))? {
        if let Some(o) = describe(session, r.slot, handle)? {
            return Ok(Some((handle, o)));
        }
    }
    Ok(None)
}

fn not_found(r: &HsmRef) -> HsmError {
    HsmError::NotFound(r.uid())
}

/// Runs `f` on the object `r` inside a session of its slot. The object's handle and
/// description are remembered (a search per operation costs more than the operation on some
/// HSMs); a handle the HSM no longer knows (the key destroyed by other tools) is searched again.
fn on_object<T>(
    hsm: &Hsm,
    r: &HsmRef,
    operation: &'static str,
    f: impl Fn(&Session, ObjectHandle, &HsmObject) -> std::result::Result<Result<T>, Error>,
) -> Result<T> {
    let known = hsm.handles.lock().ok().and_then(|h| h.get(r).cloned());
    hsm.pool(r.slot)?.with_session(operation, |session| {
        if let Some((handle, object)) = &known {
            match f(session, *handle, object) {
                Err(Error::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)) => {
                    hsm.forget(r);
                }
                other => return other,
            }
        }
        match one(session, r)? {
            Some((handle, object)) => {
                if let Ok(mut h) = hsm.handles.lock() {
                    if h.len() >= HANDLES {
                        h.clear();
                    }
                    h.insert(r.clone(), (handle, object.clone()));
                }
                f(session, handle, &object)
            }
            None => Ok(Err(not_found(r))),
        }
    })?
}

/// Handles remembered at most.
const HANDLES: usize = 4096;

/// A raw `r || s` ECDSA signature as DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 132 {
        return Err(HsmError::Unsupported(
            "the HSM returned a malformed ECDSA signature".into(),
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let integer = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut out = vec![0x02];
        let pad = v.first().is_none_or(|b| b & 0x80 != 0);
        out.push((v.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend(v);
        out
    };
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    Ok(out)
}

/// DER `ECDSA-Sig-Value` to raw `r || s` of `size` bytes each; `None` when malformed.
fn ecdsa_raw(der: &[u8], size: usize) -> Option<Vec<u8>> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (len, mut rest) = match rest.split_first()? {
        (&0x81, r) => {
            let (&l, r) = r.split_first()?;
            (usize::from(l), r)
        }
        (&l, r) if l < 0x80 => (usize::from(l), r),
        _ => return None,
    };
    if rest.len() != len {
        return None;
    }
    let mut out = Vec::with_capacity(2 * size);
    for _ in 0..2 {
        let (&tag, r) = rest.split_first()?;
        let (&l, r) = r.split_first()?;
        let l = usize::from(l);
        if tag != 0x02 || l > r.len() || l >= 0x80 {
            return None;
        }
        let (v, r) = r.split_at(l);
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if v.len() > size {
            return None;
        }
        out.extend(std::iter::repeat_n(0, size - v.len()));
        out.extend(v);
        rest = r;
    }
    rest.is_empty().then_some(out)
}

impl Hsm {
    /// The object `r`.
    pub fn describe(&self, r: &HsmRef) -> Result<HsmObject> {
        on_object(self, r, "C_GetAttributeValue", |_, _, o| Ok(Ok(o.clone())))
    }

    /// Every key object of every configured slot.
    pub fn list(&self) -> Result<Vec<HsmObject>> {
        let mut out = Vec::new();
        for slot in self.slots() {
            let found = self.pool(slot)?.with_session("C_FindObjects", |session| {
                let mut objects = Vec::new();
                for handle in find(session, None)? {
                    objects.extend(describe(session, slot, handle)?);
                }
                Ok(objects)
            })?;
            out.extend(found);
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    fn refuse_taken(
        &self,
        session: &Session,
        r: &HsmRef,
    ) -> std::result::Result<Result<()>, Error> {
        Ok(if find(session, Some(&r.label))?.is_empty() {
            Ok(())
        } else {
            Err(HsmError::AlreadyExists(r.uid()))
        })
    }

    /// Generates an AES key of `bits` (128, 192 or 256) at `r`, kept in the token.
    pub fn create_aes(&self, r: &HsmRef, bits: u32, extractable: bool) -> Result<()> {
        if ![128, 192, 256].contains(&bits) {
            return Err(HsmError::Unsupported(format!(
                "AES keys in the HSM are 128, 192 or 256 bits, not {bits}"
            )));
        }
        self.pool(r.slot)?
            .with_session("C_GenerateKey", |session| {
                if let Err(e) = self.refuse_taken(session, r)? {
                    return Ok(Err(e));
                }
                let template = [
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Label(r.label.as_bytes().to_vec()),
                    Attribute::Id(r.label.as_bytes().to_vec()),
                    Attribute::ValueLen((u64::from(bits) / 8).into()),
                    Attribute::Sensitive(!extractable),
                    Attribute::Extractable(extractable),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(true),
                    Attribute::Unwrap(true),
                ];
                session.generate_key(&Mechanism::AesKeyGen, &template)?;
                Ok(Ok(()))
            })?
    }

    /// Generates a key pair: the private key at `r`, the public key at `r.public_half()`.
    pub fn create_key_pair(&self, r: &HsmRef, kind: PairKind, extractable: bool) -> Result<()> {
        let public = r.public_half();
        let id = r.label.as_bytes().to_vec();
        let (mechanism, mut public_template, mut private_template) = match kind {
            PairKind::Rsa { bits } => {
                if !(2048..=4096).contains(&bits) || bits % 8 != 0 {
                    return Err(HsmError::Unsupported(format!(
                        "RSA keys in the HSM are 2048 to 4096 bits, not {bits}"
                    )));
                }
                (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(u64::from(bits).into()),
                        Attribute::PublicExponent(vec![1, 0, 1]),
                        Attribute::Encrypt(true),
                        Attribute::Wrap(true),
                    ],
                    vec![Attribute::Decrypt(true), Attribute::Unwrap(true)],
                )
            }
            PairKind::Ec { bits } => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(curve_oid(bits)?.to_vec())],
                vec![],
            ),
        };
        public_template.extend([
            Attribute::Token(true),
            Attribute::Label(public.label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
            Attribute::Verify(true),
        ]);
        private_template.extend([
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(r.label.as_bytes().to_vec()),
            Attribute::Id(id),
            Attribute::Sensitive(!extractable),
            Attribute::Extractable(extractable),
            Attribute::Sign(true),
        ]);
        self.pool(r.slot)?
            .with_session("C_GenerateKeyPair", |session| {
                for taken in [r, &public] {
                    if let Err(e) = self.refuse_taken(session, taken)? {
                        return Ok(Err(e));
                    }
                }
                session.generate_key_pair(&mechanism, &public_template, &private_template)?;
                Ok(Ok(()))
            })?
    }

    /// Destroys the object `r` (one half of a pair: destroy the other with its own reference).
    pub fn destroy(&self, r: &HsmRef) -> Result<()> {
        let outcome = on_object(self, r, "C_DestroyObject", |session, handle, _| {
            session.destroy_object(handle)?;
            Ok(Ok(()))
        });
        self.forget(r);
        outcome
    }

    /// A public key's components, or a secret key's value when the HSM lets it out.
    pub fn export(&self, r: &HsmRef) -> Result<Exported> {
        on_object(self, r, "C_GetAttributeValue", |session, handle, o| {
            let public_handle =
                |session: &Session| -> std::result::Result<Option<ObjectHandle>, Error> {
                    if o.class == ObjectClass::Public {
                        return Ok(Some(handle));
                    }
                    Ok(one(session, &r.public_half())?.map(|(h, _)| h))
                };
            match (o.class, o.kind) {
                (ObjectClass::Secret, _) => {
                    if !o.extractable {
                        return Ok(Err(HsmError::NotExtractable(r.uid())));
                    }
                    let value = session
                        .get_attributes(handle, &[AttributeType::Value])?
                        .into_iter()
                        .find_map(|a| match a {
                            Attribute::Value(v) => Some(Zeroizing::new(v)),
                            _ => None,
                        });
                    Ok(value
                        .map(Exported::Secret)
                        .ok_or_else(|| HsmError::NotExtractable(r.uid())))
                }
                (_, KeyKind::Rsa) => {
                    let Some(h) = public_handle(session)? else {
                        return Ok(Err(HsmError::NotExtractable(r.uid())));
                    };
                    let (mut modulus, mut exponent) = (None, None);
                    for a in session.get_attributes(
                        h,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )? {
                        match a {
                            Attribute::Modulus(m) => modulus = Some(m),
                            Attribute::PublicExponent(e) => exponent = Some(e),
                            _ => {}
                        }
                    }
                    Ok(match (modulus, exponent) {
                        (Some(modulus), Some(exponent)) => {
                            Ok(Exported::Public(PublicKey::Rsa { modulus, exponent }))
                        }
                        _ => Err(HsmError::NotExtractable(r.uid())),
                    })
                }
                (_, KeyKind::Ec { bits }) => {
                    let Some(h) = public_handle(session)? else {
                        return Ok(Err(HsmError::NotExtractable(r.uid())));
                    };
                    let point = session
                        .get_attributes(h, &[AttributeType::EcPoint])?
                        .into_iter()
                        .find_map(|a| match a {
                            Attribute::EcPoint(p) => Some(p),
                            _ => None,
                        });
                    let size = 1 + 2 * (bits as usize).div_ceil(8);
                    // PKCS#11 gives the point DER-wrapped in an OCTET STRING (some libraries
                    // give it bare).
                    let point = point.and_then(|p| {
                        if p.len() == size {
                            Some(p)
                        } else if p.len() == size + 2 && p[0] == 0x04 && usize::from(p[1]) == size {
                            Some(p[2..].to_vec())
                        } else {
                            None
                        }
                    });
                    Ok(point
                        .map(|point| Exported::Public(PublicKey::Ec { bits, point }))
                        .ok_or_else(|| HsmError::NotExtractable(r.uid())))
                }
                (_, KeyKind::Aes) => Ok(Err(HsmError::NotExtractable(r.uid()))),
            }
        })
    }

    /// Encrypts `data` with the key `r` inside the HSM (for AES-GCM: ciphertext then tag).
    pub fn encrypt(&self, r: &HsmRef, cipher: Cipher<'_>, data: &[u8]) -> Result<Vec<u8>> {
        let key = self.encryption_key(r, cipher)?;
        on_object(self, &key, "C_Encrypt", |session, handle, _| {
            with_mechanism(cipher, |m| session.encrypt(m, handle, data))
        })
    }

    /// Decrypts `data` with the key `r` inside the HSM (for AES-GCM: ciphertext then tag).
    pub fn decrypt(
        &self,
        r: &HsmRef,
        cipher: Cipher<'_>,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        on_object(self, r, "C_Decrypt", |session, handle, _| {
            match with_mechanism(cipher, |m| session.decrypt(m, handle, data)) {
                Ok(Ok(plain)) => Ok(Ok(Zeroizing::new(plain))),
                Ok(Err(e)) => Ok(Err(e)),
                // One answer for a wrong tag, padding or ciphertext: no oracle.
                Err(Error::Pkcs11(
                    RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                    _,
                )) => Ok(Err(HsmError::DecryptionFailed)),
                Err(e) => Err(e),
            }
        })
    }

    /// RSA encryption needs the public half; a private key's reference names its pair.
    fn encryption_key(&self, r: &HsmRef, cipher: Cipher<'_>) -> Result<HsmRef> {
        if matches!(cipher, Cipher::RsaOaep { .. } | Cipher::RsaPkcs1v15) {
            let o = self.describe(r)?;
            if o.class == ObjectClass::Private {
                return Ok(r.public_half());
            }
        }
        Ok(r.clone())
    }

    /// Signs `data` with the private key `r` inside the HSM.
    pub fn sign(&self, r: &HsmRef, signature: Signature, data: &[u8]) -> Result<Vec<u8>> {
        let raw = on_object(self, r, "C_Sign", |session, handle, o| {
            if o.class != ObjectClass::Private {
                return Ok(Err(HsmError::Unsupported(format!(
                    "{} is not a private key: sign with the private key",
                    r.uid()
                ))));
            }
            let input = signed_input(signature, data);
            Ok(Ok(session.sign(
                &sign_mechanism(signature),
                handle,
                &input,
            )?))
        })?;
        match signature {
            Signature::Ecdsa(_) => ecdsa_der(&raw),
            _ => Ok(raw),
        }
    }

    /// Verifies `signature` on `data` inside the HSM with the public half of `r`.
    pub fn verify(
        &self,
        r: &HsmRef,
        scheme: Signature,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let o = self.describe(r)?;
        let public = if o.class == ObjectClass::Private {
            r.public_half()
        } else {
            r.clone()
        };
        let signature = match (scheme, o.kind) {
            (Signature::Ecdsa(_), KeyKind::Ec { bits }) => {
                match ecdsa_raw(signature, (bits as usize).div_ceil(8)) {
                    Some(raw) => raw,
                    None => return Ok(false),
                }
            }
            _ => signature.to_vec(),
        };
        on_object(self, &public, "C_Verify", |session, handle, _| {
            let input = signed_input(scheme, data);
            match session.verify(&sign_mechanism(scheme), handle, &input, &signature) {
                Ok(()) => Ok(Ok(true)),
                Err(Error::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => {
                    Ok(Ok(false))
                }
                Err(e) => Err(e),
            }
        })
    }
}

fn sign_mechanism(s: Signature) -> Mechanism<'static> {
    match s {
        Signature::RsaPss(h) => {
            let params = PkcsPssParams {
                hash_alg: h.mechanism(),
                mgf: h.mgf(),
                s_len: h.len().into(),
            };
            match h {
                Hash::Sha1 => Mechanism::Sha1RsaPkcsPss(params),
                Hash::Sha256 => Mechanism::Sha256RsaPkcsPss(params),
                Hash::Sha384 => Mechanism::Sha384RsaPkcsPss(params),
                Hash::Sha512 => Mechanism::Sha512RsaPkcsPss(params),
            }
        }
        Signature::RsaPkcs1v15(h) => match h {
            Hash::Sha1 => Mechanism::Sha1RsaPkcs,
            Hash::Sha256 => Mechanism::Sha256RsaPkcs,
            Hash::Sha384 => Mechanism::Sha384RsaPkcs,
            Hash::Sha512 => Mechanism::Sha512RsaPkcs,
        },
        Signature::Ecdsa(_) => Mechanism::Ecdsa,
    }
}

/// What the HSM is given to sign: the message, or for ECDSA its digest.
fn signed_input(s: Signature, data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match s {
        Signature::Ecdsa(h) => std::borrow::Cow::Owned(h.digest(data)),
        _ => std::borrow::Cow::Borrowed(data),
    }
}

/// Builds the mechanism of `cipher` (GCM needs a mutable copy of the IV) and runs `f` with it;
/// the outer result is the PKCS#11 call's, the inner one this crate's refusals.
fn with_mechanism<T>(
    cipher: Cipher<'_>,
    f: impl FnOnce(&Mechanism<'_>) -> std::result::Result<T, Error>,
) -> std::result::Result<Result<T>, Error> {
    match cipher {
        Cipher::AesGcm { iv, aad, tag_len } => {
            let mut iv = iv.to_vec();
            let params = match GcmParams::new(&mut iv, aad, ((tag_len * 8) as u64).into()) {
                Ok(p) => p,
                Err(e) => {
                    return Ok(Err(HsmError::Unsupported(format!(
                        "AES-GCM parameters the HSM cannot take: {e}"
                    ))));
                }
            };
            f(&Mechanism::AesGcm(params)).map(Ok)
        }
        Cipher::AesCbcPad { iv } => f(&Mechanism::AesCbcPad(iv)).map(Ok),
        Cipher::RsaOaep { hash, label } => {
            let source = if label.is_empty() {
                PkcsOaepSource::empty()
            } else {
                PkcsOaepSource::data_specified(label)
            };
            let params = PkcsOaepParams::new(hash.mechanism(), hash.mgf(), source);
            f(&Mechanism::RsaPkcsOaep(params)).map(Ok)
        }
        Cipher::RsaPkcs1v15 => f(&Mechanism::RsaPkcs).map(Ok),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_convert_both_ways() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero in DER
        raw[40] = 0x01; // s has leading zeros to strip
        let der = ecdsa_der(&raw).expect("der");
        assert_eq!(der[0], 0x30);
        assert_eq!(ecdsa_raw(&der, 32), Some(raw));
        assert_eq!(ecdsa_raw(&der[..der.len() - 1], 32), None);
        assert_eq!(ecdsa_raw(&[0x30, 0x00], 32), None);
    }
}
