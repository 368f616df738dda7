//! Other encodings of a signature that still verify: what an attacker who
//! saw one signed request can make without the key. Each helper returns the
//! re-encoded signature, or `None` when the algorithm (or this signature)
//! has none.

use gnapd::proto::httpsig::Algorithm;

/// The order n of the P-256 group (SEC 2, big-endian).
const P256_N: [u8; 32] = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

/// The order n of the P-384 group.
const P384_N: [u8; 48] = hex(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
);

/// `signature` re-encoded so that it still verifies under the same key over
/// the same base, if `alg` allows one:
/// - ECDSA: `(r, n - s)` (ECDSA verification accepts both `s` and `-s`);
/// - RSA: the signature without its leading zero octets (an integer below
///   the modulus; some verifiers take it shorter than the modulus);
/// - Ed25519: `S + l`, the same scalar non-canonically encoded (which
///   `verify_strict` refuses: the test shows it);
/// - HMAC: none (compared byte for byte).
pub fn reencode(alg: Algorithm, signature: &[u8]) -> Option<Vec<u8>> {
    match alg {
        Algorithm::EcdsaP256Sha256 => Some(negate_s(signature, &P256_N)),
        Algorithm::EcdsaP384Sha384 => Some(negate_s(signature, &P384_N)),
        Algorithm::RsaPssSha512 | Algorithm::RsaV15Sha256 => {
            let zeros = signature.iter().take_while(|b| **b == 0).count();
            (zeros > 0).then(|| signature[zeros..].to_vec())
        }
        Algorithm::Ed25519 => Some(add_group_order(signature)),
        Algorithm::HmacSha256 => None,
    }
}

/// The order l of the Ed25519 group, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `R || S` → `R || S + l` (S little-endian; a canonical S stays below
/// 2^256 after the addition).
fn add_group_order(signature: &[u8]) -> Vec<u8> {
    assert_eq!(signature.len(), 64, "R||S expected");
    let mut out = signature.to_vec();
    let mut carry = 0u16;
    for (byte, l) in out[32..].iter_mut().zip(ED25519_L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    out
}

/// True if a signature made by `alg` can be re-encoded ([`reencode`]);
/// RSA signatures only when they start with a zero octet, so a test signs
/// until one does.
pub fn wants_leading_zero(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::RsaPssSha512 | Algorithm::RsaV15Sha256)
}

/// `r || s` → `r || (n - s)`, all big-endian of n's length.
fn negate_s(signature: &[u8], n: &[u8]) -> Vec<u8> {
    let half = n.len();
    assert_eq!(signature.len(), 2 * half, "raw r||s expected");
    let (r, s) = signature.split_at(half);
    let mut out = r.to_vec();
    let mut negated = vec![0u8; half];
    let mut borrow = 0i16;
    for i in (0..half).rev() {
        let mut d = i16::from(n[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        negated[i] = d as u8;
    }
    assert_eq!(borrow, 0, "s below n");
    out.extend_from_slice(&negated);
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not hex"),
    }
}

const fn hex<const N: usize>(text: &str) -> [u8; N] {
    let b = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}
