//! The GNAP signer: what it covers and which parameters it adds.

use super::*;

/// How the GNAP signer signs one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// The signature label.
    pub label: String,
    /// The `tag`: [`TAG_GNAP`], or [`TAG_ROTATE`] for a rotation's second
    /// signature.
    pub tag: &'static str,
    /// Send a random `nonce` (RFC 9635 §7.3.1: SHOULD).
    pub nonce: bool,
    /// This `nonce` instead of a random one, when `nonce` is set: only for
    /// reproducible fixtures, since an AS refuses a nonce it has seen.
    pub fixed_nonce: Option<String>,
    /// `expires`, seconds after `created`, if wanted.
    pub expires_in: Option<i64>,
    /// The digest algorithm for `Content-Digest`.
    pub digest: DigestAlgorithm,
    /// Components to cover after the profile's own (e.g. the old signature in
    /// a rotation).
    pub extra: Vec<ComponentId>,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            label: "sig1".into(),
            tag: TAG_GNAP,
            nonce: true,
            fixed_nonce: None,
            expires_in: None,
            digest: DigestAlgorithm::Sha256,
            extra: Vec::new(),
        }
    }
}

/// Signs `request` under the GNAP profile: sets `Content-Digest` when there
/// is content, covers `@method`, `@target-uri`, `content-digest`,
/// `authorization` and any of [`COVER_WHEN_PRESENT`] the request carries, and
/// adds `created`, `nonce`, `keyid` (the key's `kid`) and `tag`. Returns the
/// signature base.
pub fn sign_gnap(
    request: &mut HttpRequest,
    key: &SigningKey,
    now: i64,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let mut covered = vec![
        ComponentId::derived(Derived::Method),
        ComponentId::derived(Derived::TargetUri),
    ];
    if !request.body.is_empty() {
        let digest = content_digest(&request.body, &[options.digest]);
        request.fields.set("Content-Digest", digest.into_bytes());
        covered.push(ComponentId::field("content-digest"));
    }
    if request.fields.contains("authorization") {
        covered.push(ComponentId::field("authorization"));
    }
    for name in COVER_WHEN_PRESENT {
        if request.fields.contains(name) {
            covered.push(ComponentId::field(name));
        }
    }
    covered.extend(options.extra.iter().cloned());
    let nonce = if !options.nonce {
        None
    } else if let Some(fixed) = &options.fixed_nonce {
        Some(fixed.clone())
    } else {
        let mut bytes = [0u8; 16];
        crate::random::fill(&mut bytes).map_err(|_| SignError::Params)?;
        Some(b64::encode_url(&bytes))
    };
    let params = SignatureParams::new(
        covered,
        Metadata {
            created: Some(now),
            expires: options.expires_in.map(|e| now.saturating_add(e)),
            keyid: key.verifying_key().kid().map(str::to_owned),
            nonce,
            alg: None,
            tag: Some(options.tag.to_owned()),
        },
    )
    .map_err(|_| SignError::Params)?;
    sign_request(request, &options.label, &params, key)
}

/// Signs a key rotation request (RFC 9635 §7.3.1.1): first with `old_key`
/// (`tag="gnap"`, label `old_label`), then with `new_key` (`tag="gnap-rotate"`)
/// over the same components plus the old signature and its input.
pub fn sign_gnap_rotation(
    request: &mut HttpRequest,
    old_key: &SigningKey,
    new_key: &SigningKey,
    now: i64,
) -> Result<(), SignError> {
    let old = SignOptions::default();
    sign_gnap(request, old_key, now, &old)?;
    let chained = |field: &str| {
        ComponentId::parse(&format!("\"{field}\";key=\"{}\"", old.label))
            .map_err(|_| SignError::Params)
    };
    let new = SignOptions {
        label: "rotate".into(),
        tag: TAG_ROTATE,
        extra: vec![chained("signature")?, chained("signature-input")?],
        ..SignOptions::default()
    };
    sign_gnap(request, new_key, now, &new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::jwk::SigningKey;

    fn signed(options: &SignOptions) -> HttpRequest {
        let key = SigningKey::generate(crate::proto::alg::Algorithm::Ed25519).unwrap();
        let mut first = HttpRequest::new("POST", "https://as.example/gnap").with_body(&b"{}"[..]);
        let mut second = first.clone();
        sign_gnap(&mut first, &key, 1_790_000_000, options).unwrap();
        sign_gnap(&mut second, &key, 1_790_000_000, options).unwrap();
        assert_eq!(
            first.fields.lines("signature").collect::<Vec<_>>()
                == second.fields.lines("signature").collect::<Vec<_>>(),
            options.fixed_nonce.is_some() || !options.nonce,
            "only a random nonce makes two signings differ"
        );
        first
    }

    fn input(request: &HttpRequest) -> String {
        let line = request.fields.lines("signature-input").next().unwrap();
        String::from_utf8(line.to_vec()).unwrap()
    }

    #[test]
    fn a_fixed_nonce_is_signed_as_given_and_makes_ed25519_signatures_repeat() {
        let fixed = SignOptions {
            fixed_nonce: Some("fixture-nonce".into()),
            ..SignOptions::default()
        };
        assert!(input(&signed(&fixed)).contains(";nonce=\"fixture-nonce\";"));
        let random = input(&signed(&SignOptions::default()));
        assert!(random.contains(";nonce=\"") && !random.contains("fixture-nonce"));
        let none = SignOptions {
            nonce: false,
            ..fixed
        };
        assert!(!input(&signed(&none)).contains("nonce"));
    }
}
