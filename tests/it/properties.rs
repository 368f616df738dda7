//! Property tests: any signed request round-trips; any single-byte change to
//! a covered component breaks it.

use gnapd::proto::httpsig::{
    Algorithm, GnapProfile, HttpRequest, MemoryNonceStore, SignOptions, sign_gnap,
};
use gnapd::proto::jwk::SigningKey;
use proptest::prelude::*;
use std::sync::OnceLock;

const NOW: i64 = 1_790_000_000;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::Ed25519).unwrap())
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,40}"
}

prop_compose! {
    fn arb_request()(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "post"]),
        host in "[a-z]{1,12}(\\.[a-z]{2,6}){1,2}",
        port in prop::option::of(1u16..65535),
        path in "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}){0,4}",
        query in prop::option::of("[A-Za-z0-9=&%+._~-]{0,30}"),
        auth in prop::option::of(token()),
        extra in prop::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,40}"), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) -> HttpRequest {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        let mut req = HttpRequest::new(method, format!("https://{host}{port}{path}{query}")).with_body(body);
        if let Some(t) = auth {
            req.fields.append("Authorization", format!("GNAP {t}"));
        }
        for (n, v) in extra {
            req.fields.append(n, v.trim().to_owned());
        }
        req
    }
}

fn sign(mut req: HttpRequest) -> HttpRequest {
    sign_gnap(&mut req, key(), NOW, &SignOptions::default()).unwrap();
    req
}

fn verifies(req: &HttpRequest) -> bool {
    GnapProfile::default()
        .verify(
            req,
            key().verifying_key(),
            NOW,
            &MemoryNonceStore::default(),
        )
        .is_ok()
}

/// Changes the byte at `index` (modulo length) of `bytes` to a different
/// visible ASCII byte, keeping the text a valid field value.
fn flip(bytes: &mut Vec<u8>, index: usize) {
    if bytes.is_empty() {
        bytes.push(b'a');
        return;
    }
    let i = index % bytes.len();
    bytes[i] = if bytes[i] == b'Z' { b'Y' } else { b'Z' };
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_signed_request_verifies(req in arb_request()) {
        prop_assert!(verifies(&sign(req)));
    }

    #[test]
    fn any_single_byte_change_to_a_covered_component_fails(
        req in arb_request(),
        which in 0usize..4,
        index in any::<usize>(),
    ) {
        let mut req = sign(req);
        match which {
            0 => {
                let mut m = req.method.clone().into_bytes();
                flip(&mut m, index);
                req.method = String::from_utf8(m).unwrap();
            }
            1 => {
                let mut u = req.target_uri.clone().into_bytes();
                // Keep the scheme intact so the URI stays absolute.
                let start = "https://".len();
                let i = start + index % (u.len() - start);
                u[i] = if u[i] == b'Z' { b'Y' } else { b'Z' };
                req.target_uri = String::from_utf8(u).unwrap();
            }
            2 => {
                let mut b = req.body.clone();
                flip(&mut b, index);
                req.body = b;
            }
            _ => {
                let mut auth = req
                    .fields
                    .lines("authorization")
                    .next()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                flip(&mut auth, index);
                req.fields.set("Authorization", auth);
            }
        }
        prop_assert!(!verifies(&req));
    }
}
