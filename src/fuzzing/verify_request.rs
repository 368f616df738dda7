//! The `verify_request` hook: the GNAP profile verifier on arbitrary and
//! mutated signed requests, and the seed requests of its corpus.

use super::*;

/// Builds a request from arbitrary bytes when they are not HTTP/1.1 text:
/// `name:value` lines up to an empty line (lines without a colon are
/// skipped), then the body.
fn lenient_request(data: &[u8]) -> HttpRequest {
    let mut req = HttpRequest::new("POST", "https://as.example/gnap/tx");
    let mut rest = data;
    while !rest.is_empty() {
        let (line, tail) = split_once(rest, b'\n');
        rest = tail;
        if line.is_empty() {
            break;
        }
        let (name, value) = split_once(line, b':');
        if name.len() < line.len() {
            req.fields.append(lossy(name), value);
        }
    }
    req.body = rest.to_vec();
    req
}

/// Verifies an arbitrary request and checks what an `Ok` promises.
fn verify_arbitrary(request: &HttpRequest) {
    let key = test_key().verifying_key();
    let profile = GnapProfile::default();
    let store = MemoryNonceStore::with_capacity(64);
    // A request verifies at most once against the same store: the signature
    // that verified is remembered (its nonce, else its signature base), and
    // its replay ends the examination before any later signature.
    let mut labels: Vec<String> = Vec::new();
    for _ in 0..=MAX_SIGNATURES {
        let Ok(v) = profile.verify(request, key, NOW, &store) else {
            break;
        };
        assert!(
            labels.is_empty(),
            "a request verified twice ({labels:?}, then {})",
            v.label
        );
        assert_eq!(&v.thumbprint, key.thumbprint());
        assert!(
            v.created <= NOW + profile.max_skew && v.created >= NOW - profile.max_age,
            "created {} accepted outside the window",
            v.created
        );
        assert!(v.covered.iter().any(|c| c.as_str() == "\"@method\""));
        assert!(v.covered.iter().any(|c| c.as_str() == "\"@target-uri\""));
        if !request.body.is_empty() {
            assert!(v.covered.iter().any(|c| c.as_str() == "\"content-digest\""));
            let field = request
                .fields
                .lines("content-digest")
                .next()
                .expect("content with no Content-Digest verified");
            assert!(verify_content_digest(field, &request.body).is_ok());
        }
        if request.fields.contains("authorization") {
            assert!(v.covered.iter().any(|c| c.as_str() == "\"authorization\""));
        }
        let input = signature_inputs(&request.fields)
            .expect("verified request has readable Signature-Input")
            .into_iter()
            .find(|i| i.label == v.label)
            .expect("verified label is in Signature-Input");
        assert_eq!(input.params.tag.as_deref(), Some("gnap"));
        assert!(input.params.alg.is_none());
        labels.push(v.label);
    }
    // The rotation path: same key as old and new must not panic.
    let _ = profile.verify_rotation(request, key, key, NOW, &MemoryNonceStore::with_capacity(64));
}

/// Options bits of a signed base request, see [`signed_request`].
const OPT_AUTH: u8 = 1;
const OPT_MCP: u8 = 2;
const OPT_BODY: u8 = 4;
const OPT_NONCE: u8 = 8;

/// The unsigned request behind [`signed_request`]: an uncovered header
/// (`x-unsigned`, `content-type`) always, covered ones by `opts`.
fn unsigned_request(opts: u8) -> HttpRequest {
    let mut req = HttpRequest::new("POST", "https://as.example/gnap/tx?x=1")
        .with_field("Content-Type", "application/json")
        .with_field("X-Unsigned", "free");
    if opts & OPT_AUTH != 0 {
        req.fields
            .append("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU");
    }
    if opts & OPT_MCP != 0 {
        req.fields.append("Mcp-Session-Id", "s-1");
        req.fields.append("Mcp-Method", "tools/call");
    }
    if opts & OPT_BODY != 0 {
        req.body =
            br#"{"access_token":{"access":["foo"]},"client":"7C7C4AZ9KHRS6X63AJAO"}"#.to_vec();
    }
    req
}

/// The 16 signed variants, signed once with [`test_key`] at [`NOW`]. Each
/// is checked to verify as signed.
fn signed_request(opts: u8) -> &'static HttpRequest {
    static SIGNED: OnceLock<Vec<HttpRequest>> = OnceLock::new();
    let all = SIGNED.get_or_init(|| {
        (0..16u8)
            .map(|opts| {
                let mut req = unsigned_request(opts);
                let options = SignOptions {
                    nonce: opts & OPT_NONCE != 0,
                    ..SignOptions::default()
                };
                sign_gnap(&mut req, test_key(), NOW, &options).expect("sign_gnap");
                let verified = GnapProfile::default().verify(
                    &req,
                    test_key().verifying_key(),
                    NOW,
                    &MemoryNonceStore::with_capacity(4),
                );
                assert!(
                    verified.is_ok(),
                    "a freshly signed request fails: {verified:?}"
                );
                req
            })
            .collect()
    });
    &all[usize::from(opts & 15)]
}

/// RFC 9421 §2.1 canonical value of one field line: surrounding whitespace
/// stripped, each obsolete line fold (a run of whitespace holding a line
/// break and a space or tab) replaced by one space.
pub(super) fn canonical_line(value: &[u8]) -> Vec<u8> {
    let value = value.trim_ascii();
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let run = value[i..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        if run == 0 {
            out.push(value[i]);
            i += 1;
            continue;
        }
        let ws = &value[i..i + run];
        let has_break = ws.iter().any(|b| matches!(b, b'\r' | b'\n'));
        let has_space = ws.iter().any(|b| matches!(b, b' ' | b'\t'));
        if has_break && has_space {
            out.push(b' ');
        } else {
            out.extend_from_slice(ws);
        }
        i += run;
    }
    out
}

/// What a mutation did, for the assertion.
enum Expect {
    /// The mutation may have changed nothing the signature covers; if
    /// verification succeeds, `no_op` must be true.
    OkOnlyIf { no_op: bool, what: &'static str },
    /// Nothing covered changed: verification must still succeed.
    StillOk(&'static str),
    /// Verification must succeed exactly when this is true.
    OkIff(bool, &'static str),
    /// Nothing to check.
    Anything,
}

/// Mutates one component of a signed request as `data` says and checks that
/// the signature binds it. `data[0]` picks the mutation, `data[1]` the
/// signed variant (see `OPT_*`), the rest is the new value.
fn verify_mutated(data: &[u8]) {
    let [kind, opts, payload @ ..] = data else {
        return;
    };
    let original = signed_request(*opts);
    let mut req = original.clone();
    let mut now = NOW;
    let covered: Vec<String> = signature_inputs(&original.fields)
        .expect("signed request has Signature-Input")
        .remove(0)
        .params
        .covered()
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let is_covered = |name: &str| covered.iter().any(|c| *c == format!("\"{name}\""));
    // Fields present other than the signature's own, lowercase, in order.
    let mut names: Vec<String> = original
        .fields
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n != "signature" && n != "signature-input")
        .collect();
    names.dedup();
    let pick = payload.first().map_or(0, |b| usize::from(*b)) % names.len();
    let field = names[pick].clone();
    let tail = payload.get(1..).unwrap_or_default();

    let expect = match kind % 10 {
        0 => {
            req.method = lossy(payload);
            Expect::OkOnlyIf {
                no_op: req.method == original.method,
                what: "method",
            }
        }
        1 => {
            req.target_uri = lossy(payload);
            Expect::OkOnlyIf {
                no_op: req.target_uri == original.target_uri,
                what: "target URI",
            }
        }
        2 => {
            let before: Vec<u8> = original
                .fields
                .lines(&field)
                .next()
                .unwrap_or_default()
                .to_vec();
            req.fields.set(&field, tail);
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: canonical_line(tail) == canonical_line(&before),
                    what: "covered field value",
                }
            } else {
                Expect::StillOk("uncovered field value")
            }
        }
        3 => {
            req.fields.remove(&field);
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: false,
                    what: "covered field removed",
                }
            } else if field == "content-digest" || field == "authorization" {
                Expect::Anything
            } else {
                Expect::StillOk("uncovered field removed")
            }
        }
        4 => {
            req.fields.append(field.to_ascii_uppercase(), tail);
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: false,
                    what: "line appended to covered field",
                }
            } else {
                Expect::StillOk("line appended to uncovered field")
            }
        }
        5 => {
            req.body = payload.to_vec();
            Expect::OkOnlyIf {
                no_op: req.body == original.body,
                what: "body",
            }
        }
        6 => {
            let delta = i64::from(i16::from_le_bytes([
                payload.first().copied().unwrap_or(0),
                payload.get(1).copied().unwrap_or(0),
            ]));
            now = NOW + delta;
            let profile = GnapProfile::default();
            Expect::OkIff(
                delta >= -profile.max_skew && delta <= profile.max_age,
                "clock",
            )
        }
        7 => {
            let (label, signed_sig) = signatures(&original.fields)
                .expect("signed request has Signature")
                .remove(0);
            let mut sig = signed_sig.clone();
            let at = payload.first().map_or(0, |b| usize::from(*b));
            let xor = payload.get(1).copied().unwrap_or(1);
            match payload.get(2).copied().unwrap_or(0) % 3 {
                0 => {
                    let i = at % sig.len();
                    sig[i] ^= xor;
                }
                1 => sig.truncate(at % sig.len()),
                _ => sig.extend_from_slice(payload),
            }
            let no_op = sig == signed_sig;
            req.fields
                .set("Signature", format!("{label}=:{}:", b64::encode_std(&sig)));
            Expect::OkOnlyIf {
                no_op,
                what: "signature bytes",
            }
        }
        8 => {
            req.fields.set("Signature-Input", payload);
            let signed =
                &signature_inputs(&original.fields).expect("signed request has Signature-Input")[0];
            let no_op = signature_inputs(&req.fields).is_ok_and(|inputs| {
                inputs.iter().any(|i| {
                    i.label == signed.label && i.params.serialized() == signed.params.serialized()
                })
            });
            Expect::OkOnlyIf {
                no_op,
                what: "Signature-Input",
            }
        }
        _ => {
            // Rename a field: case changes are no-ops (names are
            // case-insensitive), anything else removes a covered field.
            let new_name = lossy(tail);
            let renamed: Fields = req
                .fields
                .iter()
                .map(|(n, v)| {
                    if n.eq_ignore_ascii_case(&field) {
                        (new_name.clone(), v.to_vec())
                    } else {
                        (n.to_owned(), v.to_vec())
                    }
                })
                .collect();
            req.fields = renamed;
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: new_name.eq_ignore_ascii_case(&field),
                    what: "covered field renamed",
                }
            } else {
                Expect::Anything
            }
        }
    };

    let result = GnapProfile::default().verify(
        &req,
        test_key().verifying_key(),
        now,
        &MemoryNonceStore::with_capacity(4),
    );
    match expect {
        Expect::OkOnlyIf { no_op, what } => assert!(
            result.is_err() || no_op,
            "a changed {what} still verifies (field {field:?})"
        ),
        Expect::StillOk(what) => assert!(
            result.is_ok(),
            "{what} ({field:?}) broke verification: {result:?}"
        ),
        Expect::OkIff(ok, what) => assert_eq!(
            result.is_ok(),
            ok,
            "{what}: now={now}, created={NOW}: {result:?}"
        ),
        Expect::Anything => {}
    }
    // Whatever happened, the reason has a metrics name.
    if let Err(e) = &result {
        let _: &'static str = Rejection::reason(e);
    }
}

/// The GNAP profile verifier.
///
/// Input: HTTP/1.1 request text (else `name:value` lines, a blank line and
/// the body, for a fixed method and URI). Two checks run on every input:
///
/// - the request is verified with the fixed key at [`NOW`]: no panic, and an
///   `Ok` keeps every promise of the profile (window, required components,
///   digest, no replay of the same label);
/// - a request signed with `sign_gnap` has one covered component (method,
///   target URI, a field value or line, the body, the clock, the signature
///   bytes, `Signature-Input`) changed as the input says: verification must
///   fail unless the change was a no-op, and must keep succeeding when only
///   uncovered fields change.
pub fn verify_request(data: &[u8]) {
    match parse_raw_request(data, "https") {
        Ok(request) => verify_arbitrary(&request),
        Err(_) => verify_arbitrary(&lenient_request(data)),
    }
    verify_mutated(data);
}

/// Writes `request` as HTTP/1.1 text with an absolute-form target, the form
/// [`parse_raw_request`] reads back.
fn raw_request(req: &HttpRequest) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\n", req.method, req.target_uri).into_bytes();
    for (name, value) in req.fields.iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&req.body);
    out
}

/// The signed seed requests of the `verify_request` target, as
/// `(file name, HTTP/1.1 text)`: requests signed by `sign_gnap` with
/// [`test_key`] at [`NOW`], which verify as they are. Nonces are random, so
/// files with one differ from run to run.
pub fn signed_seed_requests() -> Vec<(&'static str, Vec<u8>)> {
    let key = test_key();
    let no_nonce = SignOptions {
        nonce: false,
        ..SignOptions::default()
    };
    let mut out = Vec::new();
    let mut get = HttpRequest::new("GET", "https://as.example/gnap/tx/7C7C4AZ9");
    sign_gnap(&mut get, key, NOW, &no_nonce).expect("sign");
    out.push(("seed-signed-get.http", raw_request(&get)));
    let mut post = HttpRequest::new("POST", "https://as.example/gnap/tx?x=1")
        .with_field("Content-Type", "application/json")
        .with_field("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU")
        .with_field("Mcp-Session-Id", "s-1")
        .with_body(&br#"{"access_token":{"access":["foo"]}}"#[..]);
    sign_gnap(&mut post, key, NOW, &no_nonce).expect("sign");
    out.push(("seed-signed-post.http", raw_request(&post)));
    let mut expires =
        HttpRequest::new("PATCH", "https://as.example/gnap/tx/1").with_body(&b"x"[..]);
    let options = SignOptions {
        expires_in: Some(60),
        ..SignOptions::default()
    };
    sign_gnap(&mut expires, key, NOW, &options).expect("sign");
    out.push(("seed-signed-nonce-expires.http", raw_request(&expires)));
    let mut two = HttpRequest::new("POST", "https://as.example/gnap/tx");
    sign_gnap(&mut two, key, NOW, &no_nonce).expect("sign");
    let second = SignOptions {
        label: "sig2".into(),
        ..SignOptions::default()
    };
    sign_gnap(&mut two, key, NOW, &second).expect("sign");
    out.push(("seed-signed-two-labels.http", raw_request(&two)));
    let mut rotation =
        HttpRequest::new("POST", "https://as.example/gnap/continue/1").with_body(&b"{}"[..]);
    crate::proto::httpsig::sign_gnap_rotation(&mut rotation, key, &second_key(), NOW)
        .expect("sign rotation");
    out.push(("seed-signed-rotation.http", raw_request(&rotation)));
    out
}
