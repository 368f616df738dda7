//! Which member names some JSON decoder could take for one the gateway
//! reads.
//!
//! Decoders differ in how they match an object's member names to the
//! fields they fill: Go's `encoding/json` ignores ASCII case and folds
//! Unicode (`ſ` reads as `s`, the Kelvin sign as `k`, `ı` and `İ` as `i`),
//! others lower-case with the full mappings (`ß` as `ss`, `ﬅ` as `st`),
//! and one that keeps names as C strings stops at the first NUL. The
//! gateway reads exact names only; [`reads_as`] tells whether a name it
//! does not read could still be read as one it does, by any of these.

/// Whether some decoder could read member `name` as `known` (an ASCII,
/// lower-case name) without `name` being `known` itself. Byte-identical
/// names are not "read as": they are the same member.
pub fn reads_as(name: &str, known: &str) -> bool {
    name != known && folds_to(name, known)
}

/// Whether `name`, folded, spells `known`.
fn folds_to(name: &str, known: &str) -> bool {
    let mut want = known.bytes();
    for c in name.chars() {
        // A C-string decoder never sees what follows a NUL.
        if c == '\0' {
            break;
        }
        if c.is_ascii() {
            if want.next() != Some(c.to_ascii_lowercase() as u8) {
                return false;
            }
            continue;
        }
        // Only the ASCII a character folds to can match a known name (all
        // are ASCII); a character that folds to none cannot.
        let mut folded = ascii_fold(c).peekable();
        if folded.peek().is_none() {
            return false;
        }
        for f in folded {
            if want.next() != Some(f) {
                return false;
            }
        }
    }
    want.next().is_none()
}

/// The ASCII letters a non-ASCII character reads as under some case
/// mapping: its lower case, else the lower case of its upper case (`ſ` →
/// `S` → `s`, `ß` → `SS` → `ss`), else that of its lower case's upper case
/// (`ẞ` → `ß` → `SS`). `İ` lower-cases to `i` and a combining dot, which no
/// decoder compares as a letter: the `i` is kept. Empty for the rest.
fn ascii_fold(c: char) -> impl Iterator<Item = u8> {
    let ascii = |mapped: &mut dyn Iterator<Item = char>| -> Vec<u8> {
        mapped.filter(char::is_ascii).map(|l| l as u8).collect()
    };
    let mut letters = ascii(&mut c.to_lowercase());
    if letters.is_empty() {
        letters = ascii(&mut c.to_uppercase().flat_map(char::to_lowercase));
    }
    if letters.is_empty() {
        letters = ascii(
            &mut c
                .to_lowercase()
                .flat_map(char::to_uppercase)
                .flat_map(char::to_lowercase),
        );
    }
    letters.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_folding_or_case_blind_decoder_reads_as_a_known_one() {
        for (name, known) in [
            ("Name", "name"),
            ("NAME", "name"),
            ("nAmE", "name"),
            ("URI", "uri"),
            // Dotless and dotted i: Go's fold (lower, then upper) and full
            // lower-casing both give i.
            ("ur\u{131}", "uri"),
            ("ur\u{130}", "uri"),
            ("\u{131}d", "id"),
            // Long s and the Kelvin sign.
            ("param\u{17f}", "params"),
            ("argument\u{17f}", "arguments"),
            ("tas\u{212a}", "task"),
            // Ligatures and sharp s under full case mapping.
            ("\u{fb01}le", "file"),
            ("pa\u{df}", "pass"),
            ("pa\u{1e9e}", "pass"),
            // A C-string decoder stops at the NUL.
            ("name\0x", "name"),
            ("Name\0", "name"),
            ("_META", "_meta"),
        ] {
            assert!(reads_as(name, known), "{name:?} as {known}");
        }
        for (name, known) in [
            // The same member is not "another name read as it".
            ("name", "name"),
            ("names", "name"),
            ("nam", "name"),
            ("n_ame", "name"),
            ("\u{ff4e}ame", "name"),
            ("\u{3b9}d", "id"),
            ("meta", "_meta"),
            ("\0name", "name"),
        ] {
            assert!(!reads_as(name, known), "{name:?} as {known}");
        }
    }

    #[test]
    fn every_character_some_case_mapping_takes_to_ascii_is_folded() {
        // Whatever mapping a decoder applies (lower, upper, or one after
        // the other), a character that lands on ASCII letters is folded to
        // ASCII here, so no such character slips past `reads_as`.
        for c in (0x80..=0x10FFFFu32).filter_map(char::from_u32) {
            let lands = |s: String| s.chars().any(|x| x.is_ascii_alphabetic());
            let mapped = [
                c.to_lowercase().collect::<String>(),
                c.to_uppercase().collect(),
                c.to_uppercase().flat_map(char::to_lowercase).collect(),
                c.to_lowercase().flat_map(char::to_uppercase).collect(),
            ];
            if mapped.into_iter().any(lands) {
                assert!(ascii_fold(c).next().is_some(), "U+{:04X}", c as u32);
            }
        }
    }
}
