//! The `content_digest` hook: `Content-Digest` parsing and checking.

use super::*;

const DIGEST_ALGS: [DigestAlgorithm; 2] = [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512];

/// RFC 9530 `Content-Digest`.
///
/// Input: the field value, LF, then the content. Properties:
///
/// - if `(field, content)` verifies, every returned algorithm is one of the
///   field's keys, and `content_digest(content, [alg])` verifies too;
/// - a verifying field stops verifying when the content changes, and when a
///   wrong `sha-512` member is appended;
/// - a field produced by [`digest::content_digest`] for any content and any
///   algorithm list verifies, with exactly those algorithms.
pub fn content_digest(data: &[u8]) {
    let (field, content) = split_once(data, b'\n');

    if let Ok(algs) = verify_content_digest(field, content) {
        assert!(!algs.is_empty(), "verified with no algorithm");
        for alg in &algs {
            let key = format!("{}=", alg.key());
            assert!(
                field.windows(key.len()).any(|w| w == key.as_bytes()),
                "verified {} which the field does not name",
                alg.key()
            );
            let ours = digest::content_digest(content, &[*alg]);
            assert_eq!(
                verify_content_digest(ours.as_bytes(), content),
                Ok(vec![*alg])
            );
        }
        let mut other = content.to_vec();
        other.push(0);
        assert!(
            verify_content_digest(field, &other).is_err(),
            "one field verifies two contents"
        );
        let mut with_wrong = field.to_vec();
        with_wrong.extend_from_slice(b", ");
        with_wrong.extend_from_slice(
            digest::content_digest(&other, &[DigestAlgorithm::Sha512]).as_bytes(),
        );
        assert!(
            verify_content_digest(&with_wrong, content).is_err(),
            "a wrong sha-512 member beside verifying ones is ignored"
        );
    }

    let selector = content.first().copied().unwrap_or(0);
    let mut chosen: Vec<DigestAlgorithm> = Vec::new();
    for (bit, alg) in DIGEST_ALGS.iter().enumerate() {
        if selector & (1 << bit) != 0 {
            chosen.push(*alg);
        }
    }
    if selector & 4 != 0 {
        chosen.reverse();
    }
    for algs in [&DIGEST_ALGS[..1], &DIGEST_ALGS[1..], &chosen[..]] {
        let ours = digest::content_digest(content, algs);
        let result = verify_content_digest(ours.as_bytes(), content);
        if algs.is_empty() {
            assert!(result.is_err(), "an empty field verifies");
        } else {
            assert_eq!(result.as_deref(), Ok(algs), "our own field does not verify");
        }
    }
}
