//! Characters that change what a person reads without being seen.
//!
//! Terminal controls (C0, DEL and C1: ESC and CSI begin the sequences that
//! move the cursor, erase a line or retitle the window) and the Unicode
//! bidirectional controls (which reorder the text after them: "Trojan
//! Source", CVE-2021-42574), plus the Unicode line and paragraph
//! separators. A client's name or access request that carries one can hide
//! or rewrite a line of what an administrator reads before approving.
//!
//! The GNAP reader refuses them in what it reads ([`is_hidden`]); the CLI
//! escapes them in everything it prints that came from outside ([`escape`],
//! [`escape_json`]).

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that can hide or rewrite text on a screen: C0,
/// DEL, C1 (Unicode `Cc`), the bidi embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069), the marks U+200E, U+200F and U+061C,
/// and the separators U+2028 and U+2029.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` for a terminal: every [`is_hidden`] character as `\u{…}` (its
/// code point in hex); everything else as it is. Borrowed when there is
/// nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text from `serde_json` with every [`is_hidden`] character that it
/// leaves raw (DEL, C1, bidi controls, separators; it escapes C0 itself) as
/// a `\uXXXX` escape: the same JSON value, safe on a terminal. Such
/// characters only occur inside strings, where the escape means the same.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    let raw = |c: char| is_hidden(c) && u32::from(c) >= 0x7f;
    if !json.chars().any(raw) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw(c) {
            // Every one of them is in the Basic Multilingual Plane.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_bidi_controls_are_hidden_and_ordinary_text_is_not() {
        for c in [
            '\0', '\t', '\n', '\r', '\x1b', '\x7f', '\u{80}', '\u{9b}', '\u{9f}', '\u{61c}',
            '\u{200e}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{2028}',
            '\u{2029}',
        ] {
            assert!(is_hidden(c), "{:x}", u32::from(c));
        }
        for c in [
            ' ', 'a', 'é', 'ß', '中', '\u{a0}', '\u{200d}', '🙂', '\u{2070}',
        ] {
            assert!(!is_hidden(c), "{:x}", u32::from(c));
        }
    }

    #[test]
    fn escaping_shows_every_hidden_character_and_keeps_the_rest() {
        assert!(matches!(escape("Claude Desktop é"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\x1b[2K\rb\u{202e}c\\d"),
            "a\\u{1b}[2K\\u{d}b\\u{202e}c\\d"
        );
        let escaped = escape("x\u{9b}1A\u{7f}\u{2066}");
        assert!(!escaped.chars().any(is_hidden), "{escaped}");
    }

    #[test]
    fn escaped_json_is_the_same_value_without_a_hidden_character() {
        let value = serde_json::json!({"name": "a\u{1b}[1A\u{7f}\u{85}\u{202e}z", "n": 1});
        let json = value.to_string();
        let escaped = escape_json(&json);
        assert!(!escaped.chars().any(is_hidden), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let back: serde_json::Value = serde_json::from_str(&escape_json(&pretty)).unwrap();
        assert_eq!(back, value);
    }
}
