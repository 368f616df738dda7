//! The `signature_fields` hook: `Signature-Input` and `Signature` parsing,
//! re-serialization and signature bases over arbitrary member values.

use super::*;

/// The request signature bases are computed over in [`signature_fields`]:
/// every derived component and the usual fields have a value.
fn base_request(extra: &Fields) -> HttpRequest {
    let mut req = HttpRequest::new("POST", "https://example.com/foo?param=Value&Pet=dog")
        .with_field("Host", "example.com")
        .with_field("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
        .with_field("Content-Type", "application/json")
        .with_field(
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        )
        .with_field("Content-Length", "18")
        .with_field("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU")
        .with_field("Example-Dict", "  a=1,    b=2;x=1;y=2,   c=(a   b   c)")
        .with_field("mcp-session-id", "\"s-1\"")
        .with_body(&br#"{"hello": "world"}"#[..]);
    for (name, value) in extra.iter() {
        req.fields.append(name, value);
    }
    req
}

/// Checks that `base` is exactly one line per covered component, each
/// starting with the component's identifier, then the `@signature-params`
/// line: no component value can forge or hide a line.
fn assert_base_shape(base: &[u8], params: &SignatureParams) {
    let lines: Vec<&[u8]> = base.split(|b| *b == b'\n').collect();
    assert_eq!(
        lines.len(),
        params.covered().len() + 1,
        "signature base has {} lines for {} components",
        lines.len(),
        params.covered().len()
    );
    for (line, id) in lines.iter().zip(params.covered()) {
        let prefix = format!("{}: ", id.as_str());
        assert!(
            line.starts_with(prefix.as_bytes()),
            "base line does not start with {prefix:?}"
        );
        assert!(!line.contains(&b'\r') && !line.contains(&0), "control byte");
    }
    let last = format!("\"@signature-params\": {}", params.serialized());
    assert_eq!(lines.last().copied(), Some(last.as_bytes()));
}

/// Re-reads one `Signature-Input` entry from its own serialization.
fn reparse_input(input: &SignatureInput) -> SignatureInput {
    let line = format!("{}={}", input.label, input.params.serialized());
    let fields: Fields = [("Signature-Input", line.clone())].into_iter().collect();
    let mut again = signature_inputs(&fields)
        .unwrap_or_else(|e| panic!("serialization {line:?} does not re-parse: {e}"));
    assert_eq!(
        again.len(),
        1,
        "{line:?} re-parsed to {} entries",
        again.len()
    );
    again.remove(0)
}

/// `Signature-Input` / `Signature` parsing and the signature base.
///
/// Input: lines separated by LF; even lines are `Signature-Input` field lines,
/// odd lines `Signature` field lines. Properties:
///
/// - parse → serialize → parse is a fixed point for every entry, for the
///   whole field, and for each covered component identifier;
/// - [`SignatureParams::new`] rebuilds the same covered list and metadata;
/// - `Signature` byte sequences survive re-serialization;
/// - a signature base has one line per component plus `@signature-params`;
/// - for any params whose base can be built, signing with the fixed key and
///   verifying with the same params succeeds, and with other bytes fails.
pub fn signature_fields(data: &[u8]) {
    let mut fields = Fields::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let name = if i % 2 == 0 {
            "Signature-Input"
        } else {
            "Signature"
        };
        fields.append(name, line);
    }

    if let Ok(sigs) = signatures(&fields) {
        let line = sigs
            .iter()
            .map(|(label, bytes)| format!("{label}=:{}:", b64::encode_std(bytes)))
            .collect::<Vec<_>>()
            .join(", ");
        let again: Fields = [("Signature", line)].into_iter().collect();
        assert_eq!(
            signatures(&again).as_ref(),
            Ok(&sigs),
            "Signature round trip"
        );
    }

    let Ok(inputs) = signature_inputs(&fields) else {
        return;
    };
    // The whole field, re-serialized, reads back to the same entries.
    let whole = inputs
        .iter()
        .map(|i| format!("{}={}", i.label, i.params.serialized()))
        .collect::<Vec<_>>()
        .join(", ");
    let again: Fields = [("Signature-Input", whole)].into_iter().collect();
    assert_eq!(
        signature_inputs(&again).as_ref(),
        Ok(&inputs),
        "Signature-Input round trip"
    );

    let request = base_request(&fields);
    let response = HttpResponse {
        status: 200,
        fields: [
            ("Content-Type", "application/json"),
            ("Signature", "x=:AA==:"),
        ]
        .into_iter()
        .collect(),
        body: Vec::new(),
    };
    let signer = test_key();
    for input in &inputs {
        let again = reparse_input(input);
        assert_eq!(&again, input, "entry round trip");
        assert_eq!(again.params.serialized(), input.params.serialized());

        for id in input.params.covered() {
            let parsed = ComponentId::parse(id.as_str())
                .unwrap_or_else(|e| panic!("component {:?} does not re-parse: {e}", id.as_str()));
            assert_eq!(&parsed, id, "component round trip");
        }

        let p = &input.params;
        let rebuilt = SignatureParams::new(
            p.covered().to_vec(),
            Metadata {
                created: p.created,
                expires: p.expires,
                keyid: p.keyid.clone(),
                nonce: p.nonce.clone(),
                alg: p.alg.clone(),
                tag: p.tag.clone(),
            },
        )
        .unwrap_or_else(|e| panic!("SignatureParams::new refuses parsed params: {e}"));
        assert_eq!(rebuilt.covered(), p.covered());
        assert_eq!(
            (&rebuilt.created, &rebuilt.expires, &rebuilt.keyid),
            (&p.created, &p.expires, &p.keyid)
        );
        assert_eq!(
            (&rebuilt.nonce, &rebuilt.alg, &rebuilt.tag),
            (&p.nonce, &p.alg, &p.tag)
        );
        // The rebuilt (canonical order) serialization is itself a fixed point.
        let rebuilt_input = SignatureInput {
            label: input.label.clone(),
            params: rebuilt,
        };
        assert_eq!(reparse_input(&rebuilt_input), rebuilt_input);

        if let Ok(base) = signature_base(Message::Request(&request), p) {
            assert_base_shape(&base, p);
        }
        if let Ok(base) = signature_base(Message::Response(&response, Some(&request)), p) {
            assert_base_shape(&base, p);
        }

        // Sign/verify round trip over the arbitrary params. Components naming
        // the signature fields change when the signature is appended, so
        // they are left out of this check.
        let self_referential = p.covered().iter().any(|c| {
            matches!(c.name(), ComponentName::Field(f) if f == "signature" || f == "signature-input")
        });
        if self_referential {
            continue;
        }
        let mut signed = base_request(&Fields::new());
        if let Ok(base) = sign_request(&mut signed, "fz", p, signer) {
            assert_base_shape(&base, p);
            let (_, sig) = signatures(&signed.fields)
                .expect("signed request has a Signature field")
                .into_iter()
                .find(|(l, _)| l == "fz")
                .expect("signed request has the fz signature");
            let verified =
                verify_signature(Message::Request(&signed), p, &sig, signer.verifying_key());
            match &p.alg {
                Some(alg) if alg != "ed25519" => assert!(verified.is_err()),
                _ => assert_eq!(
                    verified.as_ref(),
                    Ok(&base),
                    "own signature does not verify"
                ),
            }
            let mut forged = sig.clone();
            forged[0] ^= 1;
            assert!(
                verify_signature(
                    Message::Request(&signed),
                    p,
                    &forged,
                    signer.verifying_key()
                )
                .is_err(),
                "a changed signature verifies"
            );
        }
    }
}
