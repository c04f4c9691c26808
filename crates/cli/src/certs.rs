//! `ckms certificates`: issue certificates with keys held by the KMS (self-signed, CA, leaf, from
//! a PKCS#10 request), and import or export them in PEM or DER.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use kmip::model::{
    Attribute, Attributes, Certificate, Certify, Get, Link, Object, VendorAttribute,
};
use kmip::{CertificateRequestType, CertificateType, LinkType, Tag, Ttlv, Value};
use kms_client::KmsClient;
use serde_json::json;

use crate::output::Output;
use crate::pkcs12;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CertFormat {
    Pem,
    Der,
    /// The private key, the certificate and its chain, protected by --password.
    Pkcs12,
}

#[derive(Subcommand)]
pub enum CertificatesCommand {
    /// Issue a certificate for a public key of the KMS or for a PKCS#10 request (PEM or DER).
    Certify {
        /// Identifier to give the certificate (default: a UUID chosen by the server).
        certificate_id: Option<String>,
        /// The public key to certify (its private key signs when self-signed).
        #[arg(
            long = "public-key-id",
            short = 'p',
            conflicts_with = "certificate_signing_request"
        )]
        public_key_id: Option<String>,
        /// A PKCS#10 certificate request file.
        #[arg(long = "certificate-signing-request", short = 'r')]
        certificate_signing_request: Option<PathBuf>,
        #[arg(long = "subject-cn")]
        subject_cn: Option<String>,
        #[arg(long = "subject-o")]
        subject_o: Option<String>,
        #[arg(long = "subject-ou")]
        subject_ou: Option<String>,
        #[arg(long = "subject-c")]
        subject_c: Option<String>,
        /// The issuer's private key (with --issuer-certificate-id); without both, self-signed.
        #[arg(long = "issuer-private-key-id", requires = "issuer_certificate_id")]
        issuer_private_key_id: Option<String>,
        #[arg(long = "issuer-certificate-id", requires = "issuer_private_key_id")]
        issuer_certificate_id: Option<String>,
        /// Days of validity.
        #[arg(long, short = 'd', default_value_t = 365)]
        days: u32,
        /// A certificate authority (may sign certificates).
        #[arg(long)]
        ca: bool,
        /// A CA whose chain below it has at most this many intermediate CAs.
        #[arg(long, requires = "ca")]
        pathlen: Option<u8>,
        /// Subject alternative names: DNS names, IP addresses, e-mail addresses (repeatable).
        #[arg(long)]
        san: Vec<String>,
        /// An OpenSSL extensions section (basicConstraints, keyUsage, extendedKeyUsage,
        /// subjectAltName), as in `openssl x509 -extfile`.
        #[arg(long = "certificate-extensions", short = 'e')]
        certificate_extensions: Option<PathBuf>,
        #[arg(long, short = 't')]
        tag: Vec<String>,
    },
    /// Check a chain (leaf first): files (PEM or DER) and certificates held by the server.
    Validate {
        /// Certificate files.
        #[arg(long = "certificate", short = 'v')]
        certificate: Vec<PathBuf>,
        /// Certificates held by the server.
        #[arg(long = "certificate-id", short = 'k')]
        certificate_id: Vec<String>,
    },
    /// Issue a new certificate replacing one held by the server (same key, subject, issuer).
    ReCertify {
        #[arg(long = "certificate-id", short = 'c')]
        certificate_id: String,
    },
    /// Revoke a certificate.
    Revoke {
        #[arg(long = "certificate-id", short = 'c')]
        certificate_id: String,
        revocation_reason: String,
    },
    /// Destroy a certificate (revoked or never activated).
    Destroy {
        #[arg(long = "certificate-id", short = 'c')]
        certificate_id: String,
    },
    /// Write a certificate to a file; as PKCS#12, with its private key and chain.
    Export {
        /// The certificate (or, for PKCS#12, the certificate or its private key).
        #[arg(long = "certificate-id", short = 'c')]
        certificate_id: String,
        file: PathBuf,
        #[arg(long, short = 'f', value_enum, default_value = "pem")]
        format: CertFormat,
        /// The PKCS#12 password.
        #[arg(
            long,
            short = 'p',
            env = "CKMS_PKCS12_PASSWORD",
            hide_env_values = true
        )]
        password: Option<String>,
        /// Legacy PKCS#12 algorithms (3DES, SHA-1 MAC) for old Java and Windows.
        #[arg(long)]
        legacy: bool,
    },
    /// Import an X.509 certificate (PEM or DER), or a PKCS#12: its private key, certificate and
    /// chain, linked.
    Import {
        file: PathBuf,
        certificate_id: Option<String>,
        #[arg(long, short = 'f', value_enum, default_value = "pem")]
        format: CertFormat,
        /// The PKCS#12 password.
        #[arg(
            long,
            short = 'p',
            env = "CKMS_PKCS12_PASSWORD",
            hide_env_values = true
        )]
        password: Option<String>,
        #[arg(long, short = 't')]
        tag: Vec<String>,
        #[arg(long, short = 'r')]
        replace: bool,
    },
}

fn vendor(name: &str, value: String) -> Attribute {
    Attribute::VendorAttribute(VendorAttribute {
        vendor_identification: kmip::model::COSMIAN_VENDOR.into(),
        attribute_name: name.into(),
        attribute_value: Ttlv::new(Tag::ATTRIBUTE_VALUE, Value::TextString(value)),
    })
}

/// The DER of a certificate or request file in PEM or DER.
fn der_of(bytes: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    match pem_rfc7468::decode_vec(&bytes) {
        Ok((_, der)) => Ok(der),
        Err(_) if bytes.first() == Some(&0x30) => Ok(bytes),
        Err(e) => bail!("the file is neither PEM nor DER: {e}"),
    }
}

pub async fn run(
    client: &KmsClient,
    command: CertificatesCommand,
    out: &Output,
) -> anyhow::Result<()> {
    match command {
        CertificatesCommand::Certify {
            certificate_id,
            public_key_id,
            certificate_signing_request,
            subject_cn,
            subject_o,
            subject_ou,
            subject_c,
            issuer_private_key_id,
            issuer_certificate_id,
            days,
            ca,
            pathlen,
            san,
            certificate_extensions,
            tag,
        } => {
            let mut attributes = Attributes::new();
            if let Some(path) = &certificate_extensions {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                attributes.0.push(vendor("x509_extensions", text));
            }
            for (tag, value) in [
                (Tag::CERTIFICATE_SUBJECT_CN, subject_cn),
                (Tag::CERTIFICATE_SUBJECT_O, subject_o),
                (Tag::CERTIFICATE_SUBJECT_OU, subject_ou),
                (Tag::CERTIFICATE_SUBJECT_C, subject_c),
            ] {
                if let Some(v) = value {
                    attributes
                        .0
                        .push(Attribute::Other(Ttlv::new(tag, Value::TextString(v))));
                }
            }
            for (link_type, id) in [
                (LinkType::PrivateKeyLink, issuer_private_key_id),
                (LinkType::CertificateLink, issuer_certificate_id),
            ] {
                if let Some(id) = id {
                    attributes.0.push(Attribute::Link(Link {
                        link_type,
                        linked_object_identifier: id.into(),
                    }));
                }
            }
            attributes
                .0
                .push(vendor("requested_validity_days", days.to_string()));
            if ca {
                let value = pathlen.map_or_else(|| "true".to_owned(), |n| format!("pathlen:{n}"));
                attributes.0.push(vendor("ca", value));
            }
            if !san.is_empty() {
                attributes
                    .0
                    .push(vendor("subject_alternative_names", san.join(",")));
            }
            if let Some(id) = certificate_id {
                attributes.set(Attribute::UniqueIdentifier(id.into()));
            }
            attributes.set_user_tags(&tag);
            let request = match &certificate_signing_request {
                Some(path) => {
                    Some(der_of(std::fs::read(path).with_context(|| {
                        format!("cannot read {}", path.display())
                    })?)?)
                }
                None => None,
            };
            if request.is_none() && public_key_id.is_none() {
                return Err(crate::output::usage(
                    "name the public key to certify (--public-key-id) or a request (--certificate-signing-request)",
                ));
            }
            let certified = client
                .call(Certify {
                    unique_identifier: public_key_id.map(Into::into),
                    attributes: Some(attributes),
                    certificate_request_unique_identifier: None,
                    certificate_request_type: request
                        .as_ref()
                        .map(|_| CertificateRequestType::PKCS_10),
                    certificate_request_value: request,
                    protection_storage_masks: None,
                })
                .await?;
            let uid = certified
                .unique_identifier
                .as_text()
                .unwrap_or_default()
                .to_owned();
            out.report(
                &format!("The certificate was issued with id: {uid}"),
                json!({ "unique_identifier": uid }),
            );
        }
        CertificatesCommand::Validate {
            certificate,
            certificate_id,
        } => {
            let mut given = Vec::new();
            for path in &certificate {
                let der = der_of(
                    std::fs::read(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )?;
                given.push(Ttlv::new(Tag::CERTIFICATE, Value::ByteString(der)));
            }
            let answer = client
                .call(kmip::model::Validate {
                    certificate: given,
                    unique_identifier: certificate_id.into_iter().map(Into::into).collect(),
                    validity_time: None,
                })
                .await?;
            let verdict = format!("{:?}", answer.validity_indicator);
            let reason = answer.validity_reason.unwrap_or_default();
            out.report(
                &if reason.is_empty() {
                    verdict.clone()
                } else {
                    format!("{verdict}: {reason}")
                },
                json!({ "validity": verdict, "reason": reason }),
            );
            if answer.validity_indicator != kmip::ValidityIndicator::Valid {
                return Err(crate::output::invalid("the chain is not valid"));
            }
        }
        CertificatesCommand::ReCertify { certificate_id } => {
            let answer = client
                .call(kmip::model::ReCertify {
                    unique_identifier: Some(certificate_id.into()),
                    certificate_request_type: None,
                    certificate_request_value: None,
                    offset: None,
                    attributes: None,
                })
                .await?;
            let uid = answer
                .unique_identifier
                .as_text()
                .unwrap_or_default()
                .to_owned();
            out.report(
                &format!("The certificate was re-issued with id: {uid}"),
                json!({ "unique_identifier": uid }),
            );
        }
        CertificatesCommand::Revoke {
            certificate_id,
            revocation_reason,
        } => {
            let mut revoke = kmip::model::Revoke::new(
                certificate_id.clone(),
                kmip::RevocationReasonCode::CessationOfOperation,
            );
            revoke.revocation_reason.revocation_message = Some(revocation_reason);
            client.call(revoke).await?;
            out.report(
                &format!("The certificate {certificate_id} was revoked"),
                json!({ "unique_identifier": certificate_id }),
            );
        }
        CertificatesCommand::Destroy { certificate_id } => {
            client
                .call(kmip::model::Destroy::new(certificate_id.clone()))
                .await?;
            out.report(
                &format!("The certificate {certificate_id} was destroyed"),
                json!({ "unique_identifier": certificate_id }),
            );
        }
        CertificatesCommand::Export {
            certificate_id,
            file,
            format: CertFormat::Pkcs12,
            password,
            legacy,
        } => {
            let password = password.ok_or_else(|| {
                crate::output::usage("a PKCS#12 needs --password (or CKMS_PKCS12_PASSWORD)")
            })?;
            let p12 = pkcs12::export(client, &certificate_id, &password, legacy).await?;
            crate::sym::write_private(&file, &p12)?;
            out.wrote(
                &format!(
                    "The PKCS#12 of {certificate_id} was exported to {}",
                    file.display()
                ),
                &file,
                if legacy {
                    "PKCS#12 (legacy algorithms): private key, certificate and chain"
                } else {
                    "PKCS#12: private key, certificate and chain"
                },
                json!({ "unique_identifier": certificate_id }),
            );
        }
        CertificatesCommand::Import {
            file,
            format: CertFormat::Pkcs12,
            password,
            tag,
            ..
        } => {
            let password = password.ok_or_else(|| {
                crate::output::usage("a PKCS#12 needs --password (or CKMS_PKCS12_PASSWORD)")
            })?;
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (key, certificates) = pkcs12::import(client, &data, &password, &tag).await?;
            out.report(
                &format!(
                    "The PKCS#12 was imported: private key {key}, certificates {}",
                    certificates.join(", ")
                ),
                json!({ "private_key_unique_identifier": key, "certificate_unique_identifiers": certificates }),
            );
        }
        CertificatesCommand::Export {
            certificate_id,
            file,
            format,
            ..
        } => {
            let got = client.call(Get::new(&certificate_id)).await?;
            let Object::Certificate(c) = got.object else {
                bail!("object {certificate_id} is not a certificate");
            };
            let bytes = match format {
                CertFormat::Der => c.certificate_value,
                CertFormat::Pkcs12 => bail!("a PKCS#12 is exported with its password"),
                CertFormat::Pem => pem_rfc7468::encode_string(
                    "CERTIFICATE",
                    pem_rfc7468::LineEnding::LF,
                    &c.certificate_value,
                )
                .map_err(|e| anyhow::anyhow!("cannot write PEM: {e}"))?
                .into_bytes(),
            };
            std::fs::write(&file, bytes)
                .with_context(|| format!("cannot write {}", file.display()))?;
            out.wrote(
                &format!(
                    "The certificate {certificate_id} was exported to {}",
                    file.display()
                ),
                &file,
                match format {
                    CertFormat::Der => "X.509 certificate, DER",
                    _ => "X.509 certificate, PEM",
                },
                json!({ "unique_identifier": certificate_id }),
            );
        }
        CertificatesCommand::Import {
            file,
            certificate_id,
            tag,
            replace,
            ..
        } => {
            let der = der_of(
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?,
            )?;
            let mut attributes = Attributes::new();
            attributes.set_user_tags(&tag);
            let object = Object::Certificate(Certificate {
                certificate_type: CertificateType::X_509,
                certificate_value: der,
            });
            let uid =
                crate::asym::import_as(client, certificate_id, attributes, object, replace).await?;
            out.report(
                &format!("The certificate was imported with id: {uid}"),
                json!({ "unique_identifier": uid }),
            );
        }
    }
    Ok(())
}
