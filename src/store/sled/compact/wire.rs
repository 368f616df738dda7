//! The byte-level pieces of the compact record: unsigned LEB128 varints,
//! zigzag for signed numbers, length-prefixed bytes and fixed arrays.
//!
//! The reader never trusts a length: every one is checked against the bytes
//! left before anything is sliced, and nothing is allocated ahead of the
//! bytes that would fill it.

use super::Undecodable;

/// The bytes of a record being written.
#[derive(Default)]
pub(super) struct Writer(pub Vec<u8>);

impl Writer {
    pub fn byte(&mut self, byte: u8) {
        self.0.push(byte);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            // Truncation intended: the low seven bits, with the "more" bit.
            self.0.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    /// A signed number, zigzag-folded so small magnitudes stay short.
    pub fn signed(&mut self, n: i64) {
        self.varint(((n << 1) ^ (n >> 63)) as u64);
    }

    /// `n - base`, wrapping: any pair of times has a delta that adds back
    /// to exactly `n`, and times close to their base take one or two bytes.
    pub fn delta(&mut self, n: i64, base: i64) {
        self.signed(n.wrapping_sub(base));
    }

    pub fn len(&mut self, len: usize) {
        self.varint(len as u64);
    }

    /// Length-prefixed bytes.
    pub fn blob(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.bytes(bytes);
    }

    pub fn text(&mut self, text: &str) {
        self.blob(text.as_bytes());
    }
}

/// The unread rest of a record.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    pub fn byte(&mut self) -> Result<u8, Undecodable> {
        let (&first, rest) = self
            .rest
            .split_first()
            .ok_or(Undecodable::Short("a byte"))?;
        self.rest = rest;
        Ok(first)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Undecodable> {
        if n > self.rest.len() {
            return Err(Undecodable::Short("a field's bytes"));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Undecodable> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An unsigned LEB128 number of at most ten bytes that fits 64 bits.
    pub fn varint(&mut self) -> Result<u64, Undecodable> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Undecodable::Bad("a number beyond 64 bits"));
            }
            n |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Undecodable::Bad("a number beyond 64 bits"))
    }

    pub fn signed(&mut self) -> Result<i64, Undecodable> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// The time written by [`Writer::delta`] against `base`.
    pub fn delta(&mut self, base: i64) -> Result<i64, Undecodable> {
        Ok(base.wrapping_add(self.signed()?))
    }

    /// A length or count: never more than the bytes left, since every
    /// byte or item takes at least one.
    pub fn len(&mut self) -> Result<usize, Undecodable> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest.len())
            .ok_or(Undecodable::Short("a length beyond the record"))
    }

    pub fn blob(&mut self) -> Result<&'a [u8], Undecodable> {
        let len = self.len()?;
        self.take(len)
    }

    pub fn text(&mut self) -> Result<String, Undecodable> {
        let bytes = self.blob()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Undecodable::Bad("text that is not UTF-8"))
    }

    /// Flags with no bit outside `known`.
    pub fn flags(&mut self, known: u64) -> Result<u64, Undecodable> {
        let flags = self.varint()?;
        if flags & !known != 0 {
            return Err(Undecodable::Bad("an unknown flag"));
        }
        Ok(flags)
    }

    pub fn end(&self) -> Result<(), Undecodable> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Undecodable::Bad("bytes after the record"))
        }
    }
}
