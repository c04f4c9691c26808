//! Validate: whether a chain of X.509 certificates (given as DER, or held here and named) is
//! valid at a date (now by default): each certificate signed by the next, within its validity
//! dates, every issuer a CA (basic constraints, key usage, path length), ending at a
//! self-signed root among those given, and none revoked by the CRL its distribution point names
//! (`file://` or `http(s)://`, fetched with a timeout). The answer is Valid, Invalid or Unknown
//! (a CRL that cannot be fetched, no root), with the reason in `ValidityReason`.

use std::time::Duration;

use kmip::model::{Object, Validate, ValidateResponse};
use kmip::{DateTime, ValidityIndicator, Value};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::time::ASN1Time;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// How long a CRL may take to arrive.
pub const CRL_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest CRL read.
const MAX_CRL: usize = 16 * 1024 * 1024;
/// Longest chain examined.
const MAX_CHAIN: usize = 16;

enum Verdict {
    Valid,
    Invalid(String),
    Unknown(String),
}

pub async fn validate(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Validate,
) -> KResult<ValidateResponse> {
    let mut ders: Vec<Vec<u8>> = Vec::new();
    for item in &request.certificate {
        match &item.value {
            Value::ByteString(b) => ders.push(b.clone()),
            Value::Structure(_) => match kmip::model::Item::from_ttlv(item)? {
                Object::Certificate(c) => ders.push(c.certificate_value),
                _ => {
                    return Err(KmsError::InvalidRequest(
                        "Validate takes certificates".into(),
                    ));
                }
            },
            _ => {
                return Err(KmsError::InvalidRequest(
                    "a Certificate is DER bytes".into(),
                ));
            }
        }
    }
    for uid in request.unique_identifier {
        let held = kms.load(ctx, Some(uid)).await?;
        match held.object {
            Some(Object::Certificate(c)) => ders.push(c.certificate_value),
            _ => {
                return Err(KmsError::InvalidRequest(format!(
                    "object `{}` is not a certificate",
                    held.uid
                )));
            }
        }
    }
    if ders.is_empty() {
        return Err(KmsError::MissingData(
            "Validate needs certificates: given, or named by UniqueIdentifier".into(),
        ));
    }
    if ders.len() > MAX_CHAIN {
        return Err(KmsError::InvalidRequest(format!(
            "a chain of at most {MAX_CHAIN} certificates is validated"
        )));
    }
    let mut certs = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| {
            KmsError::InvalidRequest(format!(
                "certificate {} is not a DER X.509 certificate",
                i + 1
            ))
        })?;
        certs.push(cert);
    }
    let at = request.validity_time.unwrap_or_else(DateTime::now);
    let verdict = match check_chain(&certs, at) {
        Verdict::Valid => revocation(&certs).await,
        other => other,
    };
    let (validity_indicator, validity_reason) = match verdict {
        Verdict::Valid => (ValidityIndicator::Valid, None),
        Verdict::Invalid(why) => (ValidityIndicator::Invalid, Some(why)),
        Verdict::Unknown(why) => (ValidityIndicator::Unknown, Some(why)),
    };
    Ok(ValidateResponse {
        validity_indicator,
        validity_reason,
    })
}

fn name(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

/// The chain from the first certificate (the leaf) up to a self-signed root, each issuer
/// found among the others by name and signature.
fn check_chain(certs: &[X509Certificate<'_>], at: DateTime) -> Verdict {
    let Ok(time) = ASN1Time::from_timestamp(at.0) else {
        return Verdict::Invalid("the validity date is out of range".into());
    };
    let mut current = 0usize;
    let mut depth = 0usize;
    let mut used = vec![false; certs.len()];
    loop {
        let cert = &certs[current];
        used[current] = true;
        if !cert.validity().is_valid_at(time) {
            return Verdict::Invalid(format!(
                "`{}` is not valid at that date (valid from {} to {})",
                name(cert),
                cert.validity().not_before,
                cert.validity().not_after
            ));
        }
        let self_signed = cert.subject().as_raw() == cert.issuer().as_raw()
            && cert.verify_signature(None).is_ok();
        if self_signed {
            // A root (its CA-ness was checked when it was found as the issuer below).
            return Verdict::Valid;
        }
        let issuer = certs
            .iter()
            .enumerate()
            .find(|(i, c)| !used[*i] && c.subject().as_raw() == cert.issuer().as_raw());
        let Some((index, issuer)) = issuer else {
            return Verdict::Unknown(format!(
                "the issuer of `{}` ({}) is not among the certificates given: the chain does not reach a root",
                name(cert),
                cert.issuer()
            ));
        };
        if cert.verify_signature(Some(issuer.public_key())).is_err() {
            return Verdict::Invalid(format!(
                "the signature of `{}` does not verify with the key of `{}`",
                name(cert),
                name(issuer)
            ));
        }
        if !is_ca(issuer) {
            return Verdict::Invalid(format!(
                "`{}` signed `{}` but is not a CA (no basic constraints CA:TRUE, or no keyCertSign)",
                name(issuer),
                name(cert)
            ));
        }
        if let Ok(Some(bc)) = issuer.basic_constraints()
            && let Some(limit) = bc.value.path_len_constraint
            && depth > limit as usize
        {
            return Verdict::Invalid(format!(
                "`{}` allows {limit} intermediate CAs below it, the chain has more",
                name(issuer)
            ));
        }
        if current != 0 {
            depth += 1;
        }
        current = index;
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let signs = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    ca && signs
}

/// Each certificate but the root checked against the CRL its issuer publishes.
async fn revocation(certs: &[X509Certificate<'_>]) -> Verdict {
    for cert in certs {
        if cert.subject().as_raw() == cert.issuer().as_raw() {
            continue;
        }
        for url in crl_urls(cert) {
            let der = match fetch(&url).await {
                Ok(der) => der,
                Err(why) => {
                    return Verdict::Unknown(format!(
                        "the CRL of `{}` at {url} cannot be read: {why}",
                        name(cert)
                    ));
                }
            };
            let Ok((_, crl)) = x509_parser::parse_x509_crl(&der) else {
                return Verdict::Unknown(format!("{url} does not hold a DER CRL"));
            };
            let issuer = certs
                .iter()
                .find(|c| c.subject().as_raw() == crl.issuer().as_raw());
            match issuer {
                Some(i) if crl.verify_signature(i.public_key()).is_ok() => {}
                _ => {
                    return Verdict::Unknown(format!(
                        "the CRL at {url} is not signed by an issuer in the chain"
                    ));
                }
            }
            if crl
                .iter_revoked_certificates()
                .any(|r| r.raw_serial() == cert.raw_serial())
            {
                return Verdict::Invalid(format!(
                    "`{}` (serial {}) is revoked by the CRL at {url}",
                    name(cert),
                    cert.raw_serial_as_string()
                ));
            }
        }
    }
    Verdict::Valid
}

fn crl_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for n in names {
                        if let GeneralName::URI(uri) = n {
                            out.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    out
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        let read = tokio::time::timeout(CRL_TIMEOUT, tokio::fs::read(path.to_owned()));
        return match read.await {
            Ok(Ok(b)) if b.len() <= MAX_CRL => Ok(b),
            Ok(Ok(_)) => Err("it is too large".into()),
            Ok(Err(e)) => Err(e.kind().to_string()),
            Err(_) => Err("timed out".into()),
        };
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("only file:// and http(s):// CRLs are fetched".into());
    }
    let client = reqwest::Client::builder()
        .timeout(CRL_TIMEOUT)
        .connect_timeout(CRL_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "unreachable".to_owned()
        }
    })?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|_| "the transfer failed".to_owned())?;
    if bytes.len() > MAX_CRL {
        return Err("it is too large".into());
    }
    Ok(bytes.to_vec())
}
