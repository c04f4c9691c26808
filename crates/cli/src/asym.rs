//! `ckms rsa|ec|pqc`: key pairs (create, export and import in PEM or DER, wrap and unwrap),
//! encryption and signatures with them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use kmip::model::{
    Attribute, Attributes, CreateKeyPair, CryptographicDomainParameters, CryptographicParameters,
    Decrypt, Encrypt, Get, GetAttributes, Import, KeyBlock, Object, PrivateKey, PublicKey, Sign,
    SignatureVerify,
};
use kmip::{
    BlockCipherMode, CryptographicAlgorithm, HashingAlgorithm, KeyFormatType, ObjectType,
    PaddingMethod, RecommendedCurve, Tag, Ttlv, ValidityIndicator, Value,
};
use kms_client::KmsClient;
use serde_json::json;

use crate::output::Output;

/// Which family of keys a command works on (`ckms rsa`, `ckms ec`, `ckms pqc`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Rsa,
    Ec,
    Pqc,
}

#[derive(Subcommand)]
pub enum AsymCommand {
    /// Create, export, import, wrap and unwrap key pairs.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Encrypt a file with a public key (RSA: OAEP by default; EC, X25519, ML-KEM: a key
    /// encapsulation then AES-256-GCM).
    Encrypt(CipherArgs),
    /// Decrypt a file with a private key.
    Decrypt(CipherArgs),
    /// Sign a file (or a digest of it) with a private key.
    Sign(SignArgs),
    /// Verify a signature of a file (or of a digest) with a public key.
    SignVerify(VerifyArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn kmip(self) -> HashingAlgorithm {
        match self {
            Hash::Sha1 => HashingAlgorithm::SHA_1,
            Hash::Sha256 => HashingAlgorithm::SHA_256,
            Hash::Sha384 => HashingAlgorithm::SHA_384,
            Hash::Sha512 => HashingAlgorithm::SHA_512,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CurveArg {
    NistP256,
    NistP384,
    NistP521,
    Secp256k1,
    Ed25519,
    X25519,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PqcAlgorithm {
    #[value(name = "ml-kem-512")]
    MlKem512,
    #[value(name = "ml-kem-768")]
    MlKem768,
    #[value(name = "ml-kem-1024")]
    MlKem1024,
    #[value(name = "ml-dsa-44")]
    MlDsa44,
    #[value(name = "ml-dsa-65")]
    MlDsa65,
    #[value(name = "ml-dsa-87")]
    MlDsa87,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KeyFormat {
    /// PKCS#1 (RSA) in PEM.
    Pkcs1Pem,
    Pkcs1Der,
    /// PKCS#8 for private keys, SubjectPublicKeyInfo for public keys, in PEM.
    Pkcs8Pem,
    Pkcs8Der,
    /// SEC1 `EC PRIVATE KEY` (EC private keys).
    Sec1Pem,
    Sec1Der,
    /// Raw bytes (EC scalar or point, Ed25519/X25519 keys, ML-KEM keys).
    Raw,
    /// The whole KMIP object as JSON TTLV.
    JsonTtlv,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Identifier of the private key (default: a UUID chosen by the server).
    pub private_key_id: Option<String>,
    /// RSA: the modulus size.
    #[arg(long = "size-in-bits", short = 's', default_value_t = 2048)]
    pub size_in_bits: i32,
    /// EC: the curve.
    #[arg(long, short = 'c', value_enum, default_value = "nist-p256")]
    pub curve: CurveArg,
    /// PQC: the algorithm and parameter set.
    #[arg(long, short = 'a', value_enum, default_value = "ml-kem-768")]
    pub algorithm: PqcAlgorithm,
    /// User tag, on both keys (repeatable).
    #[arg(long, short = 't')]
    pub tag: Vec<String>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key pair on the server; prints both identifiers.
    Create(CreateArgs),
    /// Write a key to a file, in the format asked, optionally wrapped by another key.
    Export {
        #[arg(long, short = 'k')]
        key_id: String,
        file: PathBuf,
        #[arg(
            long = "key-format",
            short = 'f',
            value_enum,
            default_value = "pkcs8-pem"
        )]
        key_format: KeyFormat,
        /// Wrap the key with this key (AES: RFC 5649 key wrap; RSA public key: OAEP) before
        /// it leaves the server.
        #[arg(long = "wrap-key-id", short = 'w')]
        wrap_key_id: Option<String>,
    },
    /// Import a private or public key from a PEM file (or DER, naming its format).
    Import {
        file: PathBuf,
        key_id: Option<String>,
        /// Needed for DER and raw files: pkcs1-der (RSA private key; with --public, RSA
        /// public key), pkcs8-der (private key; with --public, SubjectPublicKeyInfo), sec1-der.
        #[arg(long = "key-format", short = 'f', value_enum)]
        key_format: Option<KeyFormat>,
        /// The DER file holds a public key.
        #[arg(long)]
        public: bool,
        #[arg(long, short = 't')]
        tag: Vec<String>,
        /// Replace an existing object with the same identifier.
        #[arg(long, short = 'r')]
        replace: bool,
    },
    /// Wrap a key file with a key of the server (AES key: RFC 5649; RSA public key: OAEP).
    Wrap {
        #[arg(long, short = 'k')]
        key_id: String,
        file: PathBuf,
        output_file: PathBuf,
    },
    /// Unwrap a key file wrapped by `wrap` (or by any RFC 5649 / OAEP wrapper).
    Unwrap {
        #[arg(long, short = 'k')]
        key_id: String,
        file: PathBuf,
        output_file: PathBuf,
    },
}

#[derive(Args)]
pub struct CipherArgs {
    pub file: PathBuf,
    #[arg(long, short = 'k')]
    pub key_id: String,
    /// Output file (default: FILE.enc, or FILE.plain when decrypting).
    #[arg(long, short = 'o')]
    pub output_file: Option<PathBuf>,
    /// RSA-OAEP hash (MGF1 uses the same).
    #[arg(long, value_enum, default_value = "sha256")]
    pub hash: Hash,
    /// RSA PKCS#1 v1.5 instead of OAEP (legacy systems only).
    #[arg(long)]
    pub pkcs1: bool,
}

#[derive(Args)]
pub struct SignArgs {
    pub file: PathBuf,
    #[arg(long, short = 'k')]
    pub key_id: String,
    /// Signature file (default: FILE.sig).
    #[arg(long, short = 'o')]
    pub output_file: Option<PathBuf>,
    /// The file holds a digest made with --hash, not the data.
    #[arg(long)]
    pub digested: bool,
    /// Hash of RSA and ECDSA signatures (default: SHA-256; the curve's for P-384 and P-521).
    #[arg(long, value_enum)]
    pub hash: Option<Hash>,
    /// RSA PKCS#1 v1.5 signatures instead of RSA-PSS.
    #[arg(long)]
    pub pkcs1: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    pub file: PathBuf,
    pub signature_file: PathBuf,
    #[arg(long, short = 'k')]
    pub key_id: String,
    #[arg(long)]
    pub digested: bool,
    #[arg(long, value_enum)]
    pub hash: Option<Hash>,
    #[arg(long)]
    pub pkcs1: bool,
}

pub async fn run(
    client: &KmsClient,
    family: Family,
    command: AsymCommand,
    out: &Output,
) -> anyhow::Result<()> {
    match command {
        AsymCommand::Keys { command } => keys(client, family, command, out).await,
        AsymCommand::Encrypt(args) => cipher(client, family, args, true, out).await,
        AsymCommand::Decrypt(args) => cipher(client, family, args, false, out).await,
        AsymCommand::Sign(args) => sign(client, args, out).await,
        AsymCommand::SignVerify(args) => verify(client, args, out).await,
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn create_attributes(family: Family, args: &CreateArgs) -> Attributes {
    let mut common = Attributes::new();
    match family {
        Family::Rsa => {
            common.set(Attribute::CryptographicAlgorithm(
                CryptographicAlgorithm::RSA,
            ));
            common.set(Attribute::CryptographicLength(args.size_in_bits));
        }
        Family::Ec => {
            let (algorithm, curve) = match args.curve {
                CurveArg::NistP256 => (CryptographicAlgorithm::EC, RecommendedCurve::P_256),
                CurveArg::NistP384 => (CryptographicAlgorithm::EC, RecommendedCurve::P_384),
                CurveArg::NistP521 => (CryptographicAlgorithm::EC, RecommendedCurve::P_521),
                CurveArg::Secp256k1 => (CryptographicAlgorithm::EC, RecommendedCurve::SECP256K1),
                CurveArg::Ed25519 => (
                    CryptographicAlgorithm::Ed25519,
                    RecommendedCurve::CURVE25519,
                ),
                CurveArg::X25519 => (CryptographicAlgorithm::ECDH, RecommendedCurve::CURVE25519),
            };
            common.set(Attribute::CryptographicAlgorithm(algorithm));
            common.set(Attribute::CryptographicDomainParameters(
                CryptographicDomainParameters {
                    qlength: None,
                    recommended_curve: Some(curve),
                },
            ));
        }
        Family::Pqc => {
            let (algorithm, length) = match args.algorithm {
                PqcAlgorithm::MlKem512 => (CryptographicAlgorithm::ML_KEM, 512),
                PqcAlgorithm::MlKem768 => (CryptographicAlgorithm::ML_KEM, 768),
                PqcAlgorithm::MlKem1024 => (CryptographicAlgorithm::ML_KEM, 1024),
                PqcAlgorithm::MlDsa44 => (CryptographicAlgorithm::ML_DSA, 44),
                PqcAlgorithm::MlDsa65 => (CryptographicAlgorithm::ML_DSA, 65),
                PqcAlgorithm::MlDsa87 => (CryptographicAlgorithm::ML_DSA, 87),
            };
            common.set(Attribute::CryptographicAlgorithm(algorithm));
            common.set(Attribute::CryptographicLength(length));
        }
    }
    common.set_user_tags(&args.tag);
    // Usable at once, like the keys this CLI imports.
    common.set(Attribute::ActivationDate(kmip::DateTime::now()));
    common
}

/// PEM label of a key format for a private or public key.
fn pem_label(format: KeyFormat, private: bool) -> anyhow::Result<&'static str> {
    Ok(match (format, private) {
        (KeyFormat::Pkcs1Pem, true) => "RSA PRIVATE KEY",
        (KeyFormat::Pkcs1Pem, false) => "RSA PUBLIC KEY",
        (KeyFormat::Pkcs8Pem, true) => "PRIVATE KEY",
        (KeyFormat::Pkcs8Pem, false) => "PUBLIC KEY",
        (KeyFormat::Sec1Pem, true) => "EC PRIVATE KEY",
        _ => {
            return Err(crate::output::usage(
                "this format has no PEM form for this key",
            ));
        }
    })
}

fn kmip_format(format: KeyFormat, private: bool) -> anyhow::Result<Option<KeyFormatType>> {
    Ok(Some(match format {
        KeyFormat::Pkcs1Pem | KeyFormat::Pkcs1Der => KeyFormatType::PKCS_1,
        KeyFormat::Pkcs8Pem | KeyFormat::Pkcs8Der if private => KeyFormatType::PKCS_8,
        KeyFormat::Pkcs8Pem | KeyFormat::Pkcs8Der => KeyFormatType::X_509,
        KeyFormat::Sec1Pem | KeyFormat::Sec1Der if private => KeyFormatType::ECPrivateKey,
        KeyFormat::Sec1Pem | KeyFormat::Sec1Der => {
            return Err(crate::output::usage("SEC1 is a format of EC private keys"));
        }
        KeyFormat::Raw => KeyFormatType::Raw,
        KeyFormat::JsonTtlv => return Ok(None),
    }))
}

async fn object_type(client: &KmsClient, key_id: &str) -> anyhow::Result<ObjectType> {
    let attributes = client
        .call(GetAttributes {
            unique_identifier: Some(key_id.into()),
            attribute_reference: vec![Ttlv::new(
                Tag::ATTRIBUTE_REFERENCE,
                Value::Enumeration(Tag::OBJECT_TYPE.0),
            )],
        })
        .await?;
    attributes
        .attributes
        .object_type()
        .with_context(|| format!("object {key_id} has no ObjectType"))
}

fn wrapping_specification(kek: &str, kek_type: ObjectType) -> Ttlv {
    let parameters = match kek_type {
        ObjectType::SymmetricKey => vec![Ttlv::new(
            Tag::BLOCK_CIPHER_MODE,
            Value::Enumeration(BlockCipherMode::AESKeyWrapPadding as u32),
        )],
        _ => vec![Ttlv::new(
            Tag::PADDING_METHOD,
            Value::Enumeration(PaddingMethod::OAEP as u32),
        )],
    };
    Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::new(Tag::WRAPPING_METHOD, Value::Enumeration(1)),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![
                    Ttlv::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(kek.to_owned())),
                    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, parameters),
                ],
            ),
            // The key bytes themselves, so that any RFC 5649 / OAEP unwrapper reads them.
            Ttlv::new(Tag::ENCODING_OPTION, Value::Enumeration(1)),
        ],
    )
}

fn key_bytes(object: &Object) -> anyhow::Result<Vec<u8>> {
    let kb = object.key_block().context("the object is not a key")?;
    match &kb.key_value {
        Some(kmip::model::KeyValue::Wrapped(b)) => Ok(b.clone()),
        Some(kmip::model::KeyValue::Plain(p)) => match &p.key_material {
            kmip::model::KeyMaterial::Bytes(b) => Ok(b.clone()),
            kmip::model::KeyMaterial::Structure(_) => {
                bail!("the key is a transparent structure: export it as json-ttlv")
            }
        },
        None => bail!("the key has no value"),
    }
}

async fn keys(
    client: &KmsClient,
    family: Family,
    command: KeysCommand,
    out: &Output,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => {
            let common = create_attributes(family, &args);
            let private = args
                .private_key_id
                .as_ref()
                .map(|id| Attributes::new().with(Attribute::UniqueIdentifier(id.clone().into())));
            let created = client
                .call(CreateKeyPair {
                    common_attributes: Some(common),
                    private_key_attributes: private,
                    public_key_attributes: None,
                    common_protection_storage_masks: None,
                    private_protection_storage_masks: None,
                    public_protection_storage_masks: None,
                })
                .await?;
            let private = created
                .private_key_unique_identifier
                .as_text()
                .unwrap_or_default()
                .to_owned();
            let public = created
                .public_key_unique_identifier
                .as_text()
                .unwrap_or_default()
                .to_owned();
            out.report(
                &format!(
                    "The key pair was created.\n  Private key unique identifier: {private}\n  Public key unique identifier: {public}"
                ),
                json!({ "private_key_unique_identifier": private, "public_key_unique_identifier": public }),
            );
        }
        KeysCommand::Export {
            key_id,
            file,
            key_format,
            wrap_key_id,
        } => {
            let object_type = object_type(client, &key_id).await?;
            let private = object_type == ObjectType::PrivateKey;
            let spec = match &wrap_key_id {
                Some(kek) => Some(wrapping_specification(
                    kek,
                    self::object_type(client, kek).await?,
                )),
                None => None,
            };
            let got = client
                .call(Get {
                    key_format_type: kmip_format(key_format, private)?,
                    key_wrapping_specification: spec,
                    ..Get::new(&key_id)
                })
                .await?;
            let bytes = match key_format {
                KeyFormat::JsonTtlv => {
                    use kmip::model::Item;
                    kmip::json::to_string(&got.object.to_ttlv(got.object.tag())).into_bytes()
                }
                KeyFormat::Pkcs1Pem | KeyFormat::Pkcs8Pem | KeyFormat::Sec1Pem => {
                    if wrap_key_id.is_some() {
                        return Err(crate::output::usage(
                            "a wrapped key is not a PEM key: export it as raw, a DER format or json-ttlv",
                        ));
                    }
                    pem_rfc7468::encode_string(
                        pem_label(key_format, private)?,
                        pem_rfc7468::LineEnding::LF,
                        &key_bytes(&got.object)?,
                    )
                    .map_err(|e| anyhow::anyhow!("cannot write PEM: {e}"))?
                    .into_bytes()
                }
                _ => key_bytes(&got.object)?,
            };
            crate::sym::write_private(&file, &bytes)?;
            let content = format!(
                "{} {}{}",
                if private { "private key" } else { "public key" },
                key_format
                    .to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default(),
                match &wrap_key_id {
                    Some(kek) => format!(", wrapped by {kek}"),
                    None => String::new(),
                }
            );
            out.wrote(
                &format!("The key {key_id} was exported to {}", file.display()),
                &file,
                &content,
                json!({ "unique_identifier": key_id }),
            );
        }
        KeysCommand::Import {
            file,
            key_id,
            key_format,
            public,
            tag,
            replace,
        } => {
            let content = read(&file)?;
            let (format, is_private, der) = match pem_rfc7468::decode_vec(&content) {
                Ok((label, der)) => {
                    let (format, private) = match label {
                        "RSA PRIVATE KEY" => (KeyFormatType::PKCS_1, true),
                        "RSA PUBLIC KEY" => (KeyFormatType::PKCS_1, false),
                        "PRIVATE KEY" => (KeyFormatType::PKCS_8, true),
                        "PUBLIC KEY" => (KeyFormatType::X_509, false),
                        "EC PRIVATE KEY" => (KeyFormatType::ECPrivateKey, true),
                        other => bail!(
                            "PEM blocks labelled `{other}` are not keys this command imports (encrypted keys: decrypt them first with openssl)"
                        ),
                    };
                    (format, private, der)
                }
                Err(_) => {
                    let format = key_format.ok_or_else(|| crate::output::usage(
                        "the file is not PEM: say what it holds with --key-format (pkcs1-der, pkcs8-der, sec1-der) and --public for a public key",
                    ))?;
                    let format = kmip_format(format, !public)?.ok_or_else(|| {
                        crate::output::usage("json-ttlv is not an import format here")
                    })?;
                    (format, !public, content)
                }
            };
            if family == Family::Rsa && format == KeyFormatType::ECPrivateKey {
                return Err(crate::output::usage(
                    "an EC key cannot be imported as an RSA key: use `ckms ec keys import`",
                ));
            }
            let mut attributes = Attributes::new();
            attributes.set(Attribute::ActivationDate(kmip::DateTime::now()));
            attributes.set(Attribute::CryptographicUsageMask(if is_private {
                0x1 | 0x8 | 0x20
            } else {
                0x2 | 0x4 | 0x10
            }));
            attributes.set_user_tags(&tag);
            let block = KeyBlock::plain(format, der);
            let object = if is_private {
                Object::PrivateKey(PrivateKey { key_block: block })
            } else {
                Object::PublicKey(PublicKey { key_block: block })
            };
            let uid = import_as(client, key_id, attributes, object, replace).await?;
            out.report(
                &format!("The key was imported with id: {uid}"),
                json!({ "unique_identifier": uid }),
            );
        }
        KeysCommand::Wrap {
            key_id,
            file,
            output_file,
        } => {
            let params = wrap_parameters(object_type(client, &key_id).await?);
            let data = read(&file)?;
            let encrypted = client
                .call(Encrypt {
                    cryptographic_parameters: Some(params),
                    ..Encrypt::new(Some(key_id.clone().into()), data)
                })
                .await?;
            std::fs::write(&output_file, encrypted.data.unwrap_or_default())
                .with_context(|| format!("cannot write {}", output_file.display()))?;
            out.wrote(
                &format!(
                    "The key in {} was wrapped to {}",
                    file.display(),
                    output_file.display()
                ),
                &output_file,
                "wrapped key",
                json!({ "input_file": file, "key_id": key_id }),
            );
        }
        KeysCommand::Unwrap {
            key_id,
            file,
            output_file,
        } => {
            let kek_type = object_type(client, &key_id).await?;
            let kek_type = if kek_type == ObjectType::PrivateKey {
                ObjectType::PublicKey
            } else {
                kek_type
            };
            let data = read(&file)?;
            let decrypted = client
                .call(Decrypt {
                    cryptographic_parameters: Some(wrap_parameters(kek_type)),
                    ..Decrypt::new(Some(key_id.clone().into()), data)
                })
                .await?;
            crate::sym::write_private(&output_file, &decrypted.data.unwrap_or_default())?;
            out.wrote(
                &format!(
                    "The key in {} was unwrapped to {}",
                    file.display(),
                    output_file.display()
                ),
                &output_file,
                "unwrapped key",
                json!({ "input_file": file, "key_id": key_id }),
            );
        }
    }
    Ok(())
}

fn wrap_parameters(kek_type: ObjectType) -> CryptographicParameters {
    match kek_type {
        ObjectType::SymmetricKey => CryptographicParameters {
            block_cipher_mode: Some(BlockCipherMode::AESKeyWrapPadding),
            ..CryptographicParameters::default()
        },
        _ => CryptographicParameters {
            padding_method: Some(PaddingMethod::OAEP),
            hashing_algorithm: Some(HashingAlgorithm::SHA_256),
            ..CryptographicParameters::default()
        },
    }
}

async fn cipher(
    client: &KmsClient,
    family: Family,
    args: CipherArgs,
    encrypting: bool,
    out: &Output,
) -> anyhow::Result<()> {
    // EC, X25519 and ML-KEM keys encrypt one way (ECIES / KEM + AES-256-GCM): no parameters.
    let params = (family == Family::Rsa).then(|| CryptographicParameters {
        padding_method: Some(if args.pkcs1 {
            PaddingMethod::PKCS1V1_5
        } else {
            PaddingMethod::OAEP
        }),
        hashing_algorithm: (!args.pkcs1).then(|| args.hash.kmip()),
        ..CryptographicParameters::default()
    });
    let data = read(&args.file)?;
    let (result, default_ext) = if encrypting {
        let r = client
            .call(Encrypt {
                cryptographic_parameters: params,
                ..Encrypt::new(Some(args.key_id.clone().into()), data)
            })
            .await?;
        (r.data.unwrap_or_default(), "enc")
    } else {
        let r = client
            .call(Decrypt {
                cryptographic_parameters: params,
                ..Decrypt::new(Some(args.key_id.clone().into()), data)
            })
            .await?;
        (r.data.unwrap_or_default(), "plain")
    };
    let output = args
        .output_file
        .unwrap_or_else(|| crate::sym::append_ext(&args.file, default_ext));
    std::fs::write(&output, result)
        .with_context(|| format!("cannot write {}", output.display()))?;
    out.wrote(
        &format!(
            "The file {} was {} to {}",
            args.file.display(),
            if encrypting { "encrypted" } else { "decrypted" },
            output.display()
        ),
        &output,
        if encrypting {
            "ciphertext"
        } else {
            "plaintext"
        },
        json!({ "input_file": args.file, "key_id": args.key_id }),
    );
    Ok(())
}

fn signature_parameters(hash: Option<Hash>, pkcs1: bool) -> Option<CryptographicParameters> {
    if hash.is_none() && !pkcs1 {
        return None;
    }
    Some(CryptographicParameters {
        padding_method: pkcs1.then_some(PaddingMethod::PKCS1V1_5),
        hashing_algorithm: hash.map(Hash::kmip),
        ..CryptographicParameters::default()
    })
}

/// A signature's `Data` and `DigestedData`: one of them.
type SignedMessage = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The file as the `Data` of a signature, or as its `DigestedData`.
fn message(file: &Path, digested: bool) -> anyhow::Result<SignedMessage> {
    let bytes = read(file)?;
    Ok(if digested {
        (None, Some(bytes))
    } else {
        (Some(bytes), None)
    })
}

/// Imports `object` under `uid` (none: the server chooses); answers its identifier.
pub async fn import_as(
    client: &KmsClient,
    uid: Option<String>,
    attributes: Attributes,
    object: Object,
    replace: bool,
) -> anyhow::Result<String> {
    let imported = client
        .call(Import {
            replace_existing: Some(replace),
            ..Import::new(uid.unwrap_or_default(), attributes, object)
        })
        .await?;
    Ok(imported
        .unique_identifier
        .as_text()
        .unwrap_or_default()
        .to_owned())
}

async fn sign(client: &KmsClient, args: SignArgs, out: &Output) -> anyhow::Result<()> {
    let (data, digested_data) = message(&args.file, args.digested)?;
    let signed = client
        .call(Sign {
            unique_identifier: Some(args.key_id.clone().into()),
            cryptographic_parameters: signature_parameters(args.hash, args.pkcs1),
            data,
            digested_data,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        })
        .await?;
    let output = args
        .output_file
        .unwrap_or_else(|| crate::sym::append_ext(&args.file, "sig"));
    std::fs::write(&output, signed.signature_data.unwrap_or_default())
        .with_context(|| format!("cannot write {}", output.display()))?;
    out.wrote(
        &format!(
            "The signature of {} was written to {}",
            args.file.display(),
            output.display()
        ),
        &output,
        "signature",
        json!({ "input_file": args.file, "key_id": args.key_id }),
    );
    Ok(())
}

async fn verify(client: &KmsClient, args: VerifyArgs, out: &Output) -> anyhow::Result<()> {
    let signature = read(&args.signature_file)?;
    let (data, digested_data) = message(&args.file, args.digested)?;
    let verified = client
        .call(SignatureVerify {
            unique_identifier: Some(args.key_id.clone().into()),
            cryptographic_parameters: signature_parameters(args.hash, args.pkcs1),
            data,
            digested_data,
            signature_data: Some(signature),
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        })
        .await?;
    let valid = verified.validity_indicator == ValidityIndicator::Valid;
    out.report(
        if valid {
            "Signature verification is Valid"
        } else {
            "Signature verification is Invalid"
        },
        json!({ "valid": valid }),
    );
    if !valid {
        return Err(crate::output::invalid("the signature does not verify"));
    }
    Ok(())
}
