//! The generator of the malformed-input campaign (`malformed_input`): takes
//! a valid request for an endpoint and makes it hostile in one of nine
//! ways, seeded. Body mutations are signed again over the mutated bytes half
//! the time, so the parser behind the signature check sees them too; header
//! tricks work on the wire bytes after signing; signature garbage replaces
//! the values of the signature fields and the `Authorization` token.

use serde_json::{Map, Value};

use crate::support::rng::Rng;

/// The classes of hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The body cut short (its length says so).
    Truncated,
    /// A body past the endpoint's limit.
    Oversized,
    /// A member of another JSON type (form: a field of another shape).
    WrongTypes,
    /// Arrays or objects nested thousands deep.
    DeepNesting,
    /// Bytes that are not UTF-8, lone surrogates, NULs.
    InvalidUtf8,
    /// A member (or form field) given twice, with another value.
    DuplicateMembers,
    /// A member spelled in another case, or with a character that folds to
    /// ASCII (`ſ`, `K`, `ı`), beside or instead of the real one.
    CaseFolded,
    /// Repeated, folded, huge, many, or malformed header fields; lying
    /// lengths; chunked and length together.
    HeaderTricks,
    /// Garbage in `Signature-Input`, `Signature`, `Content-Digest`,
    /// `Authorization` (pages: the cookies).
    SignatureGarbage,
}

pub const CLASSES: [Class; 9] = [
    Class::Truncated,
    Class::Oversized,
    Class::WrongTypes,
    Class::DeepNesting,
    Class::InvalidUtf8,
    Class::DuplicateMembers,
    Class::CaseFolded,
    Class::HeaderTricks,
    Class::SignatureGarbage,
];

/// A request as header fields and body, before it goes on the wire.
#[derive(Debug, Clone)]
pub struct Draft {
    pub method: String,
    pub target: String,
    /// In order; `Host` first.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Write `Content-Length` (false when a trick writes its own framing).
    pub length: bool,
}

impl Draft {
    /// The draft of a signed request.
    pub fn of(request: &gnapd::proto::httpsig::HttpRequest) -> Self {
        let uri = gnapd::proto::httpsig::message::TargetUri::parse(&request.target_uri).unwrap();
        let mut target = uri.normalized_path().to_owned();
        if let Some(q) = uri.query {
            target.push('?');
            target.push_str(q);
        }
        let mut headers = vec![(b"Host".to_vec(), uri.authority.as_bytes().to_vec())];
        headers.extend(
            request
                .fields
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec())),
        );
        Self {
            method: request.method.clone(),
            target,
            headers,
            body: request.body.clone(),
            length: true,
        }
    }

    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.as_bytes().to_vec(), value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    pub fn wire(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let has_length = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(b"content-length"));
        if self.length && !has_length && (!self.body.is_empty() || self.method != "GET") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

// --- JSON ---------------------------------------------------------------

/// Writes `value` as JSON, adding `extra` members first to the object that
/// is the `target`-th in preorder; returns the next preorder index.
fn emit(
    value: &Value,
    at: usize,
    target: usize,
    extra: &[(String, Value)],
    out: &mut Vec<u8>,
) -> usize {
    let mut next = at + 1;
    match value {
        Value::Object(map) => {
            out.push(b'{');
            let mut first = true;
            let extras = if at == target { extra } else { &[] };
            for (k, v) in extras.iter().map(|(k, v)| (k, v)).chain(map.iter()) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&serde_json::to_vec(k).unwrap());
                out.push(b':');
                next = emit(v, next, target, extra, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                next = emit(v, next, target, extra, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(&serde_json::to_vec(scalar).unwrap()),
    }
    next
}

/// Every node in preorder, with its object member name if it has one.
fn nodes<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(value);
    match value {
        Value::Object(map) => map.values().for_each(|v| nodes(v, out)),
        Value::Array(items) => items.iter().for_each(|v| nodes(v, out)),
        _ => {}
    }
}

/// `value` with its `target`-th node (preorder) replaced by `with`.
fn replace(value: &Value, target: usize, with: &Value) -> Value {
    fn walk(v: &Value, at: &mut usize, target: usize, with: &Value) -> Value {
        let here = *at;
        *at += 1;
        if here == target {
            // Skip the replaced subtree's indices.
            let mut skipped = Vec::new();
            nodes(v, &mut skipped);
            *at += skipped.len() - 1;
            return with.clone();
        }
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, at, target, with)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| walk(v, at, target, with)).collect())
            }
            other => other.clone(),
        }
    }
    walk(value, &mut 0, target, with)
}

fn other_type(v: &Value, rng: &mut Rng) -> Value {
    let choices: [Value; 10] = [
        Value::Null,
        Value::Bool(true),
        serde_json::json!(-1),
        serde_json::json!(1.5e300),
        serde_json::json!(u64::MAX),
        serde_json::json!("a string"),
        serde_json::json!(""),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!([{"type": 7}]),
    ];
    loop {
        let c = rng.pick(&choices).clone();
        if std::mem::discriminant(&c) != std::mem::discriminant(v) {
            return c;
        }
    }
}

/// Names that fold to `name` in a case-blind or Unicode-folding decoder.
fn folded(name: &str, rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => name.to_ascii_uppercase(),
        1 => {
            let mut c = name.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        }
        2 => name
            .replacen('s', "\u{17F}", 1)
            .replacen('k', "\u{212A}", 1),
        3 => name.replacen('i', "\u{131}", 1).replacen('I', "\u{130}", 1),
        _ => format!("{name}\u{0}"),
    }
}

/// Object nodes (preorder indices) of `value`.
fn objects(value: &Value) -> Vec<usize> {
    let mut all = Vec::new();
    nodes(value, &mut all);
    (0..all.len()).filter(|i| all[*i].is_object()).collect()
}

/// A JSON body made hostile in `class` (a body class).
pub fn json_body(template: &Value, class: Class, limit: usize, rng: &mut Rng) -> Vec<u8> {
    let valid = serde_json::to_vec(template).unwrap();
    let mut all = Vec::new();
    nodes(template, &mut all);
    match class {
        Class::Truncated => {
            let cut = rng.below(valid.len().max(1));
            valid[..cut].to_vec()
        }
        Class::Oversized => {
            let pad = "x".repeat(limit + 1 + rng.below(limit));
            let mut padded = template.clone();
            if let Value::Object(map) = &mut padded {
                map.insert("pad".into(), Value::String(pad));
                serde_json::to_vec(&padded).unwrap()
            } else {
                pad.into_bytes()
            }
        }
        Class::WrongTypes => {
            let target = 1 + rng.below(all.len().saturating_sub(1).max(1));
            let with = other_type(all.get(target).copied().unwrap_or(&Value::Null), rng);
            serde_json::to_vec(&replace(template, target.min(all.len() - 1), &with)).unwrap()
        }
        Class::DeepNesting => {
            let depth = 129 + rng.below(20_000);
            let (open, close) = if rng.chance(50) {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let deep = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let target = rng.below(all.len());
            let marker = Value::String("\u{1}DEEP\u{1}".into());
            let text =
                String::from_utf8(serde_json::to_vec(&replace(template, target, &marker)).unwrap())
                    .unwrap();
            text.replacen("\"\\u0001DEEP\\u0001\"", &deep, 1)
                .into_bytes()
        }
        Class::InvalidUtf8 => {
            const BAD: [&[u8]; 9] = [
                b"\xff",
                b"\xc0\xaf",
                b"\xed\xa0\x80",
                b"\xf8\x88\x80\x80\x80",
                b"\x80",
                b"\xe2\x82",
                b"\\ud800",
                b"\\udfff\\ud800",
                b"\\u0000",
            ];
            let quotes: Vec<usize> = (0..valid.len()).filter(|i| valid[*i] == b'"').collect();
            let at = quotes
                .get(rng.below(quotes.len().max(1)))
                .map_or(0, |q| q + 1);
            let mut out = valid[..at].to_vec();
            out.extend_from_slice(rng.pick::<&[u8]>(&BAD));
            out.extend_from_slice(&valid[at..]);
            out
        }
        Class::DuplicateMembers | Class::CaseFolded => {
            let objs = objects(template);
            let Some(&target) = objs.get(rng.below(objs.len().max(1))) else {
                return valid;
            };
            let Value::Object(map) = all[target] else {
                return valid;
            };
            let Some((name, value)) = map.iter().nth(rng.below(map.len().max(1))) else {
                return valid;
            };
            let other = if rng.chance(50) {
                other_type(value, rng)
            } else {
                value.clone()
            };
            let name = if class == Class::CaseFolded {
                folded(name, rng)
            } else {
                name.clone()
            };
            let mut out = Vec::new();
            emit(template, 0, target, &[(name, other)], &mut out);
            out
        }
        Class::HeaderTricks | Class::SignatureGarbage => valid,
    }
}

/// A form body (`a=b&c=d`) made hostile in `class`.
pub fn form_body(fields: &[(&str, &str)], class: Class, limit: usize, rng: &mut Rng) -> Vec<u8> {
    let join = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    };
    let mut pairs: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    match class {
        Class::Truncated => {
            let valid = join(&pairs);
            valid[..rng.below(valid.len().max(1))].to_vec()
        }
        Class::Oversized => {
            format!("code={}", "A".repeat(limit + 1 + rng.below(limit))).into_bytes()
        }
        Class::WrongTypes => {
            for (_, v) in &mut pairs {
                *v = rng
                    .pick(&["", "%", "%zz", "%%%", "[]", "{}", "1e999", "a=b=c", "%00"])
                    .to_string();
            }
            join(&pairs)
        }
        Class::DeepNesting => {
            format!("code={}", "%5B".repeat(5_000 + rng.below(20_000))).into_bytes()
        }
        Class::InvalidUtf8 => {
            let mut out = join(&pairs);
            out.extend_from_slice(rng.pick::<&[u8]>(&[
                &b"&code=%ff%fe"[..],
                b"&code=\xff",
                b"&\xc0\xaf=1",
                b"&code=%ed%a0%80",
            ]));
            out
        }
        Class::DuplicateMembers => {
            if let Some((k, _)) = pairs.first().cloned() {
                pairs.push((k, "second".into()));
            }
            join(&pairs)
        }
        Class::CaseFolded => {
            for (k, _) in &mut pairs {
                *k = folded(k, rng);
            }
            join(&pairs)
        }
        Class::HeaderTricks | Class::SignatureGarbage => join(&pairs),
    }
}

// --- Header fields and signatures -------------------------------------------

/// Plays one header trick on `draft`; true if the request should be sent
/// with the writing half closed after it (its framing promises more).
pub fn header_trick(draft: &mut Draft, rng: &mut Rng) -> bool {
    let pick_header = |draft: &Draft, rng: &mut Rng| rng.below(draft.headers.len());
    match rng.below(12) {
        0 => {
            // The same field twice, the second with another value.
            let i = pick_header(draft, rng);
            let (name, mut value) = draft.headers[i].clone();
            value.extend_from_slice(b"-other");
            draft.headers.push((name, value));
        }
        1 => {
            // A value folded onto a continuation line (obsolete line folding).
            let i = pick_header(draft, rng);
            let value = draft.headers[i].1.clone();
            let cut = rng.below(value.len().max(1));
            let mut folded = value[..cut].to_vec();
            folded.extend_from_slice(b"\r\n\t");
            folded.extend_from_slice(&value[cut..]);
            draft.headers[i].1 = folded;
        }
        2 => {
            // A huge value.
            let n = 8_192 + rng.below(200_000);
            let name = rng.pick(&[
                "X-Huge",
                "Authorization",
                "Signature-Input",
                "Content-Type",
                "Cookie",
            ]);
            draft.set(name, vec![b'a'; n]);
        }
        3 => {
            // Many fields.
            for i in 0..(50 + rng.below(400)) {
                draft
                    .headers
                    .push((format!("X-Many-{i}").into_bytes(), b"1".to_vec()));
            }
        }
        4 => {
            // A malformed name or value.
            let bad: &[(&[u8], &[u8])] = &[
                (b"X Bad", b"1"),
                (b"X\x00Nul", b"1"),
                (b"", b"empty name"),
                (b"X-Ctl", b"a\x01\x7fb"),
                (b"X-Cr", b"a\rb"),
                (b"X-Utf8", b"\xff\xfe"),
                (b"Content-Type", b"application/json; charset=\xff"),
            ];
            let (n, v) = rng.pick(bad);
            draft.headers.push((n.to_vec(), v.to_vec()));
        }
        5 => {
            // Two different lengths.
            let n = draft.body.len();
            draft
                .headers
                .push((b"Content-Length".to_vec(), n.to_string().into_bytes()));
            draft
                .headers
                .push((b"Content-Length".to_vec(), (n + 1).to_string().into_bytes()));
            draft.length = false;
        }
        6 => {
            // A length past the body: the server waits for more, then sees
            // the end.
            let n = draft.body.len() + 1 + rng.below(1000);
            draft.set("Content-Length", n.to_string());
            draft.length = false;
            return true;
        }
        7 => {
            // A length short of the body: the rest reads as a next request.
            let n = draft.body.len().saturating_sub(1 + rng.below(10));
            draft.set("Content-Length", n.to_string());
            draft.length = false;
        }
        8 => {
            // Chunked and a length together (request smuggling).
            let chunked = format!("{:x}\r\n", draft.body.len()).into_bytes();
            let mut body = chunked;
            body.extend_from_slice(&draft.body);
            body.extend_from_slice(b"\r\n0\r\n\r\n");
            draft
                .headers
                .push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
            draft.headers.push((
                b"Content-Length".to_vec(),
                draft.body.len().to_string().into_bytes(),
            ));
            draft.body = body;
            draft.length = false;
        }
        9 => {
            // Broken chunked framing.
            draft.headers.push((
                b"Transfer-Encoding".to_vec(),
                rng.pick(&[&b"chunked"[..], b"xchunked", b"chunked, gzip", b"identity"])
                    .to_vec(),
            ));
            draft.body = rng
                .pick(&[
                    &b"zz\r\nabc\r\n0\r\n\r\n"[..],
                    b"ffffffffffffffffff\r\n",
                    b"5\r\nabc\r\n0\r\n\r\n",
                    b"0\r\n",
                ])
                .to_vec();
            draft.length = false;
            return true;
        }
        10 => {
            // A request target or version that is not.
            draft.target = rng
                .pick(&[
                    "*",
                    "//",
                    "/gnap/../gnap",
                    "http://evil.example/gnap",
                    "/%00",
                    "/gnap?%ff",
                ])
                .to_string();
            if rng.chance(30) {
                draft.method = rng.pick(&["GE T", "PATCH", "BREW", "CONNECT"]).to_string();
            }
        }
        _ => {
            // Host twice, or none.
            if rng.chance(50) {
                draft
                    .headers
                    .push((b"Host".to_vec(), b"evil.example".to_vec()));
            } else {
                draft
                    .headers
                    .retain(|(n, _)| !n.eq_ignore_ascii_case(b"host"));
            }
        }
    }
    false
}

/// Garbage for one of the signature fields (or the token); returns the
/// field name changed.
pub fn signature_garbage(draft: &mut Draft, rng: &mut Rng) -> &'static str {
    const INPUTS: [&str; 12] = [
        "sig1=(",
        "sig1=(\"@method\" \"@target-uri\");created=99999999999999999999",
        "sig1=(\"@method\");created=-1;keyid=\"\u{7f}\"",
        "sig1=(\"@query-param\";name=\"x\" \"@status\" \"x-nope\")",
        "sig1=();created=1;alg=\"rsa-v1_5-sha256\"",
        "sig1=(\"@method\" \"@target-uri\" \"content-digest\" \"authorization\");created=1;expires=2;tag=\"gnap\"",
        "a=(),b=(),c=(),d=(),e=()",
        "sig1=\"not an inner list\"",
        "sig1=(\"@method\" \"@method\" \"@method\");tag=\"gnap\";nonce=\"\"",
        "\u{ff}",
        "sig1=(\"@target-uri\";bs;sf;req;key=\"x\")",
        "sig1=(\"@method\");created=1.5;nonce=?1",
    ];
    const SIGNATURES: [&str; 7] = [
        "sig1=:AAAA:",
        "sig1=:!!!:",
        "sig1=AAAA",
        "sig1=::",
        "sig2=:AAAA:",
        "sig1=:AAAA:, sig1=:BBBB:",
        "sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:",
    ];
    const DIGESTS: [&str; 6] = [
        "sha-256=:AAAA:",
        "sha-512=:garbage:",
        "md5=:AAAA:",
        "sha-256=",
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:, sha-256=:AAAA:",
        "(",
    ];
    const TOKENS: [&str; 8] = [
        "GNAP",
        "GNAP ",
        "Bearer abc",
        "GNAP a b",
        "GNAP \u{e9}",
        "gnap lowercase-scheme",
        "GNAP ====",
        "Basic Zm9vOmJhcg==",
    ];
    match rng.below(9) {
        0 | 1 => {
            draft.set("Signature-Input", *rng.pick(&INPUTS));
            "signature-input"
        }
        2 | 3 => {
            draft.set("Signature", *rng.pick(&SIGNATURES));
            "signature"
        }
        4 => {
            draft.set("Content-Digest", *rng.pick(&DIGESTS));
            "content-digest"
        }
        5 => {
            let long = format!("GNAP {}", "A".repeat(100 + rng.below(4000)));
            let token = if rng.chance(30) {
                long
            } else {
                (*rng.pick(&TOKENS)).to_owned()
            };
            draft.set("Authorization", token);
            "authorization"
        }
        6 => {
            draft
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(b"signature"));
            "signature"
        }
        7 => {
            // A valid-looking input with a big inner list.
            let many: String = (0..(100 + rng.below(2000)))
                .map(|i| format!("\"x-{i}\" "))
                .collect();
            draft.set("Signature-Input", format!("sig1=({many});created=1"));
            "signature-input"
        }
        _ => {
            // One character of the signature flipped: well formed, wrong.
            // (Not the last before the padding: its low bits are padding,
            // which RFC 8941 §4.2.7 says parsers should not refuse.)
            let sig = draft
                .get("Signature")
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let mut flipped = sig.clone();
            let start = flipped.iter().position(|b| *b == b':').map_or(0, |i| i + 1);
            if let Some(i) = (start..flipped.len()).find(|i| flipped[*i].is_ascii_alphanumeric()) {
                flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
            }
            draft.set("Signature", flipped);
            "signature"
        }
    }
}
