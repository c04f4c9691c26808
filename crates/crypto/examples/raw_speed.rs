//! How many private-key operations per second aws-lc-rs itself does on this machine, with one
//! thread per core and keys parsed once: the ceiling the server's asymmetric operations are
//! measured against (`ckms bench --asymmetric`).
//!
//! `cargo run --release -p kms-crypto --example raw_speed -- [SECONDS]`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a measuring tool")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

fn measure(name: &str, seconds: u64, op: Arc<dyn Fn() + Send + Sync>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    op();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!(
        "{name:<28} {:>10.0} ops/s  ({threads} threads, {total} ops)",
        total as f64 / start.elapsed().as_secs_f64()
    );
}

fn rsa(bits: KeySize, seconds: u64, name: &str) {
    let key = PrivateDecryptingKey::generate(bits).unwrap();
    let public = OaepPublicEncryptingKey::new(key.public_key()).unwrap();
    let mut ciphertext = vec![0u8; public.ciphertext_size()];
    let ciphertext = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, &[7u8; 32], &mut ciphertext, None)
        .unwrap()
        .to_vec();
    let der = key.as_der().unwrap().as_ref().to_vec();
    let key = Arc::new(
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&der).unwrap()).unwrap(),
    );
    measure(
        name,
        seconds,
        Arc::new(move || {
            let mut out = vec![0u8; key.min_output_size()];
            key.decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut out, None)
                .unwrap();
        }),
    );
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("aws-lc-rs, keys parsed once, {seconds} s each");
    rsa(KeySize::Rsa2048, seconds, "RSA-2048 OAEP decrypt");
    rsa(KeySize::Rsa4096, seconds, "RSA-4096 OAEP decrypt");
    let ec = Arc::new(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap());
    let rng = aws_lc_rs::rand::SystemRandom::new();
    measure(
        "ECDSA P-256 sign",
        seconds,
        Arc::new(move || {
            ec.sign(&rng, b"benchmark data").unwrap();
        }),
    );
    let ed = Arc::new(Ed25519KeyPair::generate().unwrap());
    let _ = ed.public_key();
    measure(
        "Ed25519 sign",
        seconds,
        Arc::new(move || {
            let _ = ed.sign(b"benchmark data");
        }),
    );
    let kem = aws_lc_rs::kem::DecapsulationKey::generate(&aws_lc_rs::kem::ML_KEM_768).unwrap();
    let (ct, _) = kem.encapsulation_key().unwrap().encapsulate().unwrap();
    let ct = ct.as_ref().to_vec();
    let kem = Arc::new(kem);
    measure(
        "ML-KEM-768 decapsulate",
        seconds,
        Arc::new(move || {
            kem.decapsulate(aws_lc_rs::kem::Ciphertext::from(ct.as_slice()))
                .unwrap();
        }),
    );
}
