//! Fuzzing the X.509 reader (`Certificate::parse`) with the DER of the test certificates, and
//! PEM parsing (`parse_pem`) with the test PEM files, mutated (lengths and tags included). For
//! every input:
//!
//! - nothing panics;
//! - a parsed certificate's parts lie inside its DER, and the names and key inside the signed
//!   `tbsCertificate`; an error's offset lies inside the input;
//! - parsed PEM blocks, written out again, parse to the same blocks;
//! - a PEM error names lines and labels, never the base64 it holds.
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use base64::Engine as _;
use fuzz::{Fuzzer, SplitMix64, occurrences};
use kube_proto::config::parse_pem;
use kube_proto::config::x509::Certificate;

/// Where `part` lies in `whole`, when it is a slice of it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some((start, start + part.len()))
}

fn inside(outer: (usize, usize), inner: (usize, usize)) -> bool {
    outer.0 <= inner.0 && inner.1 <= outer.1
}

fn check_der(der: &[u8], _rng: &mut SplitMix64) -> String {
    match Certificate::parse(der) {
        Ok(cert) => {
            assert!((1..=3).contains(&cert.version));
            let tbs = offset_in(der, cert.tbs).expect("tbs inside the DER");
            let spki = &cert.subject_public_key_info;
            for (name, part) in [("issuer", cert.issuer), ("subject", cert.subject), ("spki", spki.der)] {
                let at = offset_in(der, part).unwrap_or_else(|| panic!("{name} outside the DER"));
                assert!(inside(tbs, at), "{name} outside the tbsCertificate");
            }
            let spki_at = offset_in(der, spki.der).unwrap();
            for part in [spki.algorithm, spki.key] {
                assert!(inside(spki_at, offset_in(der, part).expect("inside the DER")), "outside the key info");
            }
            for part in [cert.signature_algorithm, cert.signature] {
                let at = offset_in(der, part).expect("inside the DER");
                assert!(at.0 >= tbs.1, "the signature overlaps the signed bytes");
            }
            assert_eq!(Certificate::parse(der), Ok(cert.clone()), "parsing is deterministic");
            format!("v{}", cert.version)
        }
        Err(e) => {
            assert!(e.offset <= der.len(), "offset {} past {} bytes", e.offset, der.len());
            assert!(e.to_string().contains(e.what));
            e.what.to_owned()
        }
    }
}

/// A body line that is valid base64, planted in the seeds: no error may repeat it.
const MARKER: &[u8] = b"c2VjcmV0LW1hcmtlcg";

fn check_pem(text: &[u8], _rng: &mut SplitMix64) -> String {
    match parse_pem(text) {
        Ok(blocks) => {
            let mut again = String::new();
            for b in &blocks {
                let body = base64::engine::general_purpose::STANDARD.encode(&b.der);
                again += &format!("-----BEGIN {}-----\n{body}\n-----END {}-----\n", b.label, b.label);
                assert!(!b.der.is_empty());
                assert!(!format!("{b:?}").contains(&body), "a block's Debug shows its contents");
            }
            assert_eq!(parse_pem(again.as_bytes()).as_ref(), Ok(&blocks), "written out and read again");
            format!("ok{}", blocks.len().min(4))
        }
        Err(message) => {
            // A marker on a BEGIN or END line is a label, which errors may name.
            let on_label_line = occurrences(text, MARKER).into_iter().any(|at| {
                let start = text[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                text[start..].starts_with(b"-----") || text[start..at].trim_ascii_start().starts_with(b"-----")
            });
            if !on_label_line {
                assert!(!message.contains(std::str::from_utf8(MARKER).unwrap()), "the PEM's contents show: {message}");
            }
            // The kind of error, without line numbers or labels.
            message.chars().filter(|c| c.is_ascii_lowercase() || *c == ' ').collect::<String>().trim().to_owned()
        }
    }
}

#[test]
fn x509_certificates_never_panic_and_their_parts_lie_inside_the_der() {
    let summary = Fuzzer::new("x509")
        .tokens(&[
            b"\x30\x80",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x89\x01\x02\x03\x04\x05\x06\x07\x08\x09",
            b"\x30\x00",
            b"\x02\x01\x03",
            b"\xa0\x03\x02\x01\x05",
            b"\x03\x01\x07",
            b"\x03\x00",
            b"\x81",
            b"\x82\xff\xff",
        ])
        .max_len(8 * 1024)
        .default_iterations(20000)
        .run(check_der);
    assert!(summary.tried > 0);
}

#[test]
fn pem_never_panics_round_trips_and_errors_never_show_the_contents() {
    let summary = Fuzzer::new("pem")
        .tokens(&[
            b"-----BEGIN CERTIFICATE-----\n",
            b"-----END CERTIFICATE-----\n",
            b"-----BEGIN -----",
            b"-----END",
            b"-----BEGIN EC PRIVATE KEY-----\n",
            b"Proc-Type: 4,ENCRYPTED\n",
            b"c2VjcmV0LW1hcmtlcg==\n",
            b"=",
            b"==",
            b"MAMCAQE=",
        ])
        .default_iterations(6000)
        .run(check_pem);
    assert!(summary.tried > 0);
}

#[test]
fn the_corpora_hold_what_they_claim() {
    // Every DER seed is a certificate, and every PEM seed parses.
    for (name, der) in fuzz::load_corpus("x509") {
        assert!(Certificate::parse(&der).is_ok(), "{name}");
    }
    for (name, pem) in fuzz::load_corpus("pem") {
        assert!(parse_pem(&pem).is_ok_and(|b| !b.is_empty()), "{name}");
        check_pem(&pem, &mut SplitMix64::new(0));
    }
}
