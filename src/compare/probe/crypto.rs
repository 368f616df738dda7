//! Cryptographic operation counts: the server's from its `/metrics`
//! (`gnapd_crypto_operations_total`), the client's from this process.

use std::collections::BTreeMap;

/// The series the server exposes its counts in.
pub const SERIES: &str = "gnapd_crypto_operations_total";

/// This process's counts (`operation:algorithm` → n).
pub fn client() -> BTreeMap<String, u64> {
    crate::proto::crypto_ops::snapshot()
}

/// The counts in a Prometheus text page, keyed `operation:algorithm`.
pub fn from_exposition(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(SERIES) else {
            continue;
        };
        let Some((labels, value)) = rest.strip_prefix('{').and_then(|r| r.split_once("} ")) else {
            continue;
        };
        let (Some(operation), Some(algorithm)) =
            (label(labels, "operation"), label(labels, "algorithm"))
        else {
            continue;
        };
        if let Ok(n) = value.trim().parse::<f64>() {
            // Counters are whole numbers the exposition prints as floats.
            counts.insert(format!("{operation}:{algorithm}"), n as u64);
        }
    }
    counts
}

/// The value of `name="…"` in a label set (no escapes in these values).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_reads_into_operation_and_algorithm() {
        let text = "# TYPE gnapd_crypto_operations_total counter\n\
                    gnapd_crypto_operations_total{operation=\"verify\",algorithm=\"ed25519\"} 3\n\
                    gnapd_crypto_operations_total{operation=\"hash\",algorithm=\"sha-256\"} 12\n\
                    gnapd_tokens_issued_total 4\n";
        let counts = from_exposition(text);
        assert_eq!(counts.get("verify:ed25519"), Some(&3));
        assert_eq!(counts.get("hash:sha-256"), Some(&12));
        assert_eq!(counts.len(), 2);
    }
}
