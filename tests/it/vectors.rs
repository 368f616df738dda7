//! The published test vectors: RFC 9421 Appendix B.2 and B.4, RFC 9530.

use gnapd::proto::digest::{DigestAlgorithm, content_digest, verify_content_digest};
use gnapd::proto::httpsig::input::{signature_inputs, signatures};
use gnapd::proto::httpsig::message::{parse_raw_request, parse_raw_response};
use gnapd::proto::httpsig::sign::{sign_request, sign_response};
use gnapd::proto::httpsig::verify::verify_signature;
use gnapd::proto::httpsig::{
    Algorithm, Fields, HttpRequest, HttpResponse, Message, signature_base,
};
use gnapd::proto::jwk::{SigningKey, VerifyingKey};
use serde_json::Value;

use crate::support::paths::vector;

/// A B.2 example: its message, parsed.
enum Parsed {
    Request(HttpRequest),
    Response(HttpResponse),
}

impl Parsed {
    fn message(&self) -> Message<'_> {
        match self {
            Self::Request(r) => Message::Request(r),
            Self::Response(r) => Message::Response(r, None),
        }
    }
    fn fields(&self) -> &gnapd::proto::httpsig::Fields {
        match self {
            Self::Request(r) => &r.fields,
            Self::Response(r) => &r.fields,
        }
    }

    /// The same message with its fields as a server's parsed header map.
    fn as_header_map(&self) -> Self {
        match self {
            Self::Request(r) => Self::Request(HttpRequest {
                fields: header_map(&r.fields),
                ..r.clone()
            }),
            Self::Response(r) => Self::Response(HttpResponse {
                fields: header_map(&r.fields),
                ..r.clone()
            }),
        }
    }
}

/// `fields` as hyper hands them to the gateway: an `http::HeaderMap`
/// (names lowercased, lines of one name kept in order).
fn header_map(fields: &Fields) -> Fields {
    let mut map = http::HeaderMap::new();
    for (name, value) in fields.iter() {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let fields = Fields::from(map);
    assert!(fields.header_map().is_some());
    fields
}

fn load(id: &str) -> (Value, Parsed) {
    let v = vector(&format!("rfc9421-b-2-{id}.json"));
    let raw = v["message_raw"].as_str().unwrap().as_bytes().to_vec();
    let mut parsed = match v["message_kind"].as_str().unwrap() {
        "request" => Parsed::Request(parse_raw_request(&raw, "https").unwrap()),
        _ => Parsed::Response(parse_raw_response(&raw).unwrap()),
    };
    // The printed messages carry no signature fields; attach the example's.
    let (fields, _) = match &mut parsed {
        Parsed::Request(r) => (&mut r.fields, ()),
        Parsed::Response(r) => (&mut r.fields, ()),
    };
    fields.append(
        "Signature-Input",
        v["signature_input_header"].as_str().unwrap(),
    );
    fields.append("Signature", v["signature_header"].as_str().unwrap());
    (v, parsed)
}

fn algorithm(v: &Value) -> Algorithm {
    Algorithm::from_name(v["alg"].as_str().unwrap()).unwrap()
}

fn verifying_key(v: &Value) -> VerifyingKey {
    let alg = algorithm(v);
    if alg == Algorithm::HmacSha256 {
        VerifyingKey::from_shared_secret_jwk(&v["key_jwk_private"]).unwrap()
    } else {
        VerifyingKey::from_public_jwk(&v["key_jwk_public"], Some(alg)).unwrap()
    }
}

/// Builds the base from the example's Signature-Input, compares it with the
/// published base, and verifies the published signature: with the fields as
/// lines, and again as a server's parsed header map (the gateway's form).
fn check_published(id: &str) {
    let (v, parsed) = load(id);
    check_published_message(id, &v, &parsed);
    check_published_message(id, &v, &parsed.as_header_map());
}

fn check_published_message(id: &str, v: &Value, parsed: &Parsed) {
    let inputs = signature_inputs(parsed.fields()).unwrap();
    let sigs = signatures(parsed.fields()).unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].label, v["label"].as_str().unwrap());
    let base = signature_base(parsed.message(), &inputs[0].params).unwrap();
    assert_eq!(
        String::from_utf8(base).unwrap(),
        v["signature_base"].as_str().unwrap(),
        "B.2.{id} signature base"
    );
    verify_signature(
        parsed.message(),
        &inputs[0].params,
        &sigs[0].1,
        &verifying_key(v),
    )
    .unwrap_or_else(|e| panic!("B.2.{id}: {e}"));
}

/// Signs the example's base again with the private key and verifies the new
/// signature; for deterministic algorithms the bytes must equal the RFC's.
fn check_resign(id: &str) {
    let (v, parsed) = load(id);
    let key = SigningKey::from_private_jwk(&v["key_jwk_private"], Some(algorithm(&v))).unwrap();
    let params = signature_inputs(parsed.fields()).unwrap().remove(0).params;
    let label = "resigned";
    let (base, fields) = match parsed {
        Parsed::Request(mut r) => (
            sign_request(&mut r, label, &params, &key).unwrap(),
            r.fields,
        ),
        Parsed::Response(mut r) => (
            sign_response(&mut r, None, label, &params, &key).unwrap(),
            r.fields,
        ),
    };
    assert_eq!(
        String::from_utf8(base.clone()).unwrap(),
        v["signature_base"].as_str().unwrap()
    );
    let ours = signatures(&fields)
        .unwrap()
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap()
        .1;
    key.verifying_key().verify(&base, &ours).unwrap();
    if v["deterministic"].as_bool().unwrap() {
        let published = gnapd_b64_std(v["signature_b64"].as_str().unwrap());
        assert_eq!(ours, published, "B.2.{id} must be reproduced byte for byte");
    }
}

fn gnapd_b64_std(text: &str) -> Vec<u8> {
    // Decode through the structured-field parser the crate uses, so the test
    // needs no base64 crate of its own.
    let item: sfv::Item = sfv::Parser::new(format!(":{text}:").as_str())
        .parse()
        .unwrap();
    item.bare_item.as_byte_sequence().unwrap().to_vec()
}

#[test]
fn rfc9421_b_2_1_minimal_rsa_pss_verifies_with_exact_base() {
    check_published("1");
    check_resign("1");
}

#[test]
fn rfc9421_b_2_2_selective_rsa_pss_verifies_with_exact_base() {
    check_published("2");
    check_resign("2");
}

#[test]
fn rfc9421_b_2_3_full_coverage_rsa_pss_verifies_with_exact_base() {
    check_published("3");
    check_resign("3");
}

#[test]
fn rfc9421_b_2_4_response_ecdsa_p256_verifies_with_exact_base() {
    check_published("4");
    check_resign("4");
}

#[test]
fn rfc9421_b_2_5_hmac_sha256_is_reproduced_byte_for_byte() {
    check_published("5");
    check_resign("5");
}

#[test]
fn rfc9421_b_2_6_ed25519_is_reproduced_byte_for_byte() {
    check_published("6");
    check_resign("6");
}

#[test]
fn rfc9421_b_4_transformations_keep_or_break_the_signature_as_published() {
    let v = vector("rfc9421-b-4-transform.json");
    let key =
        VerifyingKey::from_public_jwk(&v["key_jwk_public"], Some(Algorithm::Ed25519)).unwrap();
    let messages = v["messages"].as_array().unwrap();
    assert!(messages.len() >= 6);
    for (i, m) in messages.iter().enumerate() {
        let req =
            parse_raw_request(m["message_raw"].as_str().unwrap().as_bytes(), "https").unwrap();
        let mapped = HttpRequest {
            fields: header_map(&req.fields),
            ..req.clone()
        };
        for req in [req, mapped] {
            let inputs = signature_inputs(&req.fields).unwrap();
            let sigs = signatures(&req.fields).unwrap();
            let result =
                verify_signature(Message::Request(&req), &inputs[0].params, &sigs[0].1, &key);
            assert_eq!(
                result.is_ok(),
                m["expected_valid"].as_bool().unwrap(),
                "B.4 message {i} ({:?}): {result:?}",
                req.fields.header_map().map(|_| "header map")
            );
        }
    }
}

#[test]
fn rfc9530_examples_compute_and_verify() {
    let v = vector("rfc9530-content-digest.json");
    for ex in v["examples"].as_array().unwrap() {
        if let (Some(content), Some(field)) =
            (ex["content"].as_str(), ex["Content-Digest"].as_str())
        {
            let alg = DigestAlgorithm::from_key(field.split('=').next().unwrap()).unwrap();
            assert_eq!(
                content_digest(content.as_bytes(), &[alg]),
                field,
                "{}",
                ex["where"]
            );
            verify_content_digest(field.as_bytes(), content.as_bytes()).unwrap();
            if let Some(f512) = ex["Content-Digest(sha-512)"].as_str() {
                assert_eq!(
                    content_digest(content.as_bytes(), &[DigestAlgorithm::Sha512]),
                    f512
                );
            }
        }
        if let Some(header) = ex["header"].as_str() {
            // The two-member dictionary of §2 verifies against its content.
            let checked =
                verify_content_digest(header.as_bytes(), b"{\"hello\": \"world\"}\n").unwrap();
            assert_eq!(
                checked,
                vec![DigestAlgorithm::Sha256, DigestAlgorithm::Sha512]
            );
        }
    }
    let appendix = &v["sample_values_appendix"];
    let input = appendix["input"].as_str().unwrap().as_bytes();
    for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        let expected = appendix[alg.key()].as_str().unwrap();
        assert_eq!(
            content_digest(input, &[alg]),
            format!("{}={expected}", alg.key())
        );
    }
}
