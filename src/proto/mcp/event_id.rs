//! SSE event ids an agent can resume only its own streams with.
//!
//! An upstream's event ids name its streams (MCP's transport asks them to
//! encode the stream), and a GET with `Last-Event-ID` replays a stream
//! from one. Passed through as they are, any agent could send an id it
//! did not receive — another agent's, guessed, or from another session —
//! and have the upstream replay that stream through the gateway. So the
//! ids going to an agent are sealed: the upstream's id with an
//! HMAC-SHA-256 tag (RFC 2104) under a key the gateway draws at start, over
//! who received it (key thumbprint and credential set), the upstream and
//! the session. Only an id that opens under the presenting call's own
//! binding is taken back, and the upstream then gets its own id again.
//!
//! A sealed id is `base64url(upstream id) "." base64url(tag)`, with the tag
//! cut to 128 bits (RFC 2104 §5 allows cutting to half the hash and no
//! less); it is visible ASCII without `.`-ambiguity, as an SSE `id` field
//! and the `Last-Event-ID` header need.

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::proto::b64;
use crate::proto::hmac::hmac_sha256;

/// Bytes of the tag kept in a sealed id.
const TAG_LEN: usize = 16;

/// Who an event id was sent to, and on what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The agent key's JWK thumbprint.
    pub thumbprint: String,
    /// The credential set the call used at the upstream, if any.
    pub credential_set: Option<String>,
    /// The upstream's name.
    pub upstream: String,
    /// The MCP session (`Mcp-Session-Id`), if the upstream keeps sessions.
    pub session: Option<String>,
}

/// The gateway's key for event ids; never written anywhere, so a restart
/// makes earlier ids unresumable (as a restart forgets sessions anyway).
pub struct EventIds {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for EventIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventIds(redacted)")
    }
}

impl EventIds {
    /// Event ids under `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(key),
        }
    }

    /// Event ids under a key drawn from the operating system.
    pub fn generate() -> Result<Self, crate::random::NoRandomness> {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::random::fill(&mut key[..])?;
        Ok(Self { key })
    }

    /// The id to send the agent `binding` names for the upstream's
    /// `event_id`.
    pub fn seal(&self, binding: &Binding, event_id: &str) -> String {
        let tag = self.tag(binding, event_id);
        format!(
            "{}.{}",
            b64::encode_url(event_id.as_bytes()),
            b64::encode_url(&tag[..TAG_LEN])
        )
    }

    /// The upstream's event id in `sealed`, if it was sealed for exactly
    /// `binding`.
    pub fn open(&self, binding: &Binding, sealed: &str) -> Option<String> {
        let (id, tag) = sealed.split_once('.')?;
        let id = String::from_utf8(b64::decode_url(id)?).ok()?;
        let tag = b64::decode_url(tag)?;
        let expected = self.tag(binding, &id);
        (tag.len() == TAG_LEN && bool::from(tag.ct_eq(&expected[..TAG_LEN]))).then_some(id)
    }

    /// HMAC-SHA-256 over the binding and the id, each part length-prefixed
    /// so that no two bindings share an input.
    fn tag(&self, binding: &Binding, event_id: &str) -> [u8; 32] {
        let mut message = Vec::with_capacity(128);
        message.extend_from_slice(b"gnapd sse event id v1");
        let parts = [
            Some(binding.thumbprint.as_str()),
            binding.credential_set.as_deref(),
            Some(binding.upstream.as_str()),
            binding.session.as_deref(),
            Some(event_id),
        ];
        for part in parts {
            match part {
                None => message.push(0),
                Some(text) => {
                    message.push(1);
                    message.extend_from_slice(&(text.len() as u64).to_be_bytes());
                    message.extend_from_slice(text.as_bytes());
                }
            }
        }
        hmac_sha256(&self.key, &message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            thumbprint: "alice-key".into(),
            credential_set: Some("enterprise:github".into()),
            upstream: "github".into(),
            session: Some("s-1".into()),
        }
    }

    #[test]
    fn a_sealed_event_id_opens_only_for_its_key_set_upstream_and_session() {
        let ids = EventIds::new([7; 32]);
        let sealed = ids.seal(&binding(), "e-42");
        assert!(
            sealed.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{sealed}"
        );
        assert_eq!(ids.open(&binding(), &sealed).as_deref(), Some("e-42"));

        let others = [
            Binding {
                thumbprint: "mallory-key".into(),
                ..binding()
            },
            Binding {
                credential_set: None,
                ..binding()
            },
            Binding {
                upstream: "slack".into(),
                ..binding()
            },
            Binding {
                session: Some("s-2".into()),
                ..binding()
            },
            Binding {
                session: None,
                ..binding()
            },
        ];
        for other in &others {
            assert_eq!(ids.open(other, &sealed), None, "{other:?}");
        }
        // Another gateway's (or a restarted one's) key.
        assert_eq!(EventIds::new([8; 32]).open(&binding(), &sealed), None);
        // Forged, altered, truncated, or the upstream's id as it was.
        let (id, tag) = sealed.split_once('.').unwrap();
        let other_id = b64::encode_url(b"e-43");
        for forged in [
            "e-42".to_owned(),
            format!("{other_id}.{tag}"),
            format!("{id}.{}", &tag[..tag.len() - 2]),
            format!("{id}.{tag}AA"),
            format!("{id}."),
            format!(".{tag}"),
            format!("{id}.{tag}.{tag}"),
            String::new(),
        ] {
            assert_eq!(ids.open(&binding(), &forged), None, "{forged}");
        }
    }

    #[test]
    fn fields_cannot_shift_between_binding_parts() {
        let ids = EventIds::new([7; 32]);
        let a = Binding {
            thumbprint: "ab".into(),
            credential_set: Some("c".into()),
            ..binding()
        };
        let b = Binding {
            thumbprint: "a".into(),
            credential_set: Some("bc".into()),
            ..binding()
        };
        assert_eq!(ids.open(&b, &ids.seal(&a, "e")), None);
        let none = Binding {
            session: None,
            ..binding()
        };
        let empty = Binding {
            session: Some(String::new()),
            ..binding()
        };
        assert_eq!(ids.open(&empty, &ids.seal(&none, "e")), None);
    }
}
