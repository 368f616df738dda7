//! The resource server's `WWW-Authenticate: GNAP` challenge (RFC 9635 §9.1).
//!
//! A gateway answers a call without a usable token with
//! `WWW-Authenticate: GNAP as_uri="…", access="…"`: the grant endpoint of its
//! AS and an access right reference to ask for. The field follows RFC 9110
//! §11.6.1 (`#challenge`, each `auth-scheme [ 1*SP #auth-param ]`), so one
//! field may carry several challenges (`Bearer …, GNAP …`) and parameter
//! values may be tokens or quoted strings. RFC 9635's own example writes
//! `as_uri` unquoted even though `:` and `/` are not token characters, so an
//! unquoted value is read up to the next comma or whitespace.

use thiserror::Error;

/// What a GNAP challenge tells a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `as_uri`: the AS's grant endpoint. REQUIRED.
    pub as_uri: String,
    /// `access`: an access right reference the client may ask for.
    pub access: Option<String>,
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    /// No challenge in the fields has the `GNAP` scheme.
    #[error("the server sent no GNAP challenge")]
    NoGnapChallenge,
    /// The field does not follow the `challenge` grammar.
    #[error("the WWW-Authenticate field is malformed")]
    Malformed,
    /// The GNAP challenge has no `as_uri`.
    #[error("the GNAP challenge has no as_uri")]
    MissingAsUri,
    /// `as_uri` is not an absolute http(s) URI.
    #[error("the GNAP challenge's as_uri is not an absolute http(s) URI")]
    BadAsUri,
    /// A parameter appears twice (RFC 9110 §11.2: "MUST NOT occur more than
    /// once per challenge").
    #[error("the GNAP challenge repeats the parameter `{0}`")]
    Repeated(String),
}

/// One challenge: its scheme and parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChallenge {
    /// The auth-scheme, as sent.
    pub scheme: String,
    /// `name=value` parameters, in order; a token68 is kept under the
    /// empty name.
    pub params: Vec<(String, String)>,
}

/// Finds the GNAP challenge among the values of every `WWW-Authenticate`
/// field line.
pub fn gnap_challenge<'a>(
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, ChallengeError> {
    let mut malformed = false;
    for value in fields {
        let challenges = match parse_challenges(value) {
            Ok(c) => c,
            Err(_) => {
                malformed = true;
                continue;
            }
        };
        if let Some(gnap) = challenges
            .into_iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("GNAP"))
        {
            return gnap_params(gnap);
        }
    }
    Err(if malformed {
        ChallengeError::Malformed
    } else {
        ChallengeError::NoGnapChallenge
    })
}

fn gnap_params(challenge: RawChallenge) -> Result<Challenge, ChallengeError> {
    let mut as_uri = None;
    let mut access = None;
    for (name, value) in challenge.params {
        let slot = match name.as_str() {
            "as_uri" => &mut as_uri,
            "access" => &mut access,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(ChallengeError::Repeated(name));
        }
    }
    let as_uri = as_uri.ok_or(ChallengeError::MissingAsUri)?;
    let parsed = crate::proto::httpsig::message::TargetUri::parse(&as_uri)
        .map_err(|_| ChallengeError::BadAsUri)?;
    if !matches!(parsed.normalized_scheme().as_str(), "http" | "https") {
        return Err(ChallengeError::BadAsUri);
    }
    Ok(Challenge {
        as_uri,
        access: access.filter(|a| !a.is_empty()),
    })
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Splits one `WWW-Authenticate` value into its challenges.
pub fn parse_challenges(value: &str) -> Result<Vec<RawChallenge>, ChallengeError> {
    let mut p = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out: Vec<RawChallenge> = Vec::new();
    loop {
        p.skip_list_separators();
        if p.done() {
            break;
        }
        let scheme = p.token().ok_or(ChallengeError::Malformed)?;
        let mut challenge = RawChallenge {
            scheme,
            params: Vec::new(),
        };
        // Parameters follow after at least one space; a comma ends the
        // challenge's first element list only if what follows is not
        // `name=`.
        p.skip_ws();
        while !p.done() && p.peek() != Some(b',') {
            challenge.params.push(p.param()?);
            p.skip_ws();
            if p.peek() == Some(b',') {
                let save = p.i;
                p.skip_list_separators();
                if p.starts_param() {
                    continue;
                }
                p.i = save;
                break;
            }
        }
        out.push(challenge);
    }
    Ok(out)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// True if a `token BWS "="` starts here (an auth-param, not a scheme).
    fn starts_param(&self) -> bool {
        let mut j = self.i;
        let start = j;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == start {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        self.s.get(j) == Some(&b'=')
    }
    /// `token BWS "=" BWS ( token / quoted-string )`, or a token68.
    fn param(&mut self) -> Result<(String, String), ChallengeError> {
        let start = self.i;
        let name = self.token().ok_or(ChallengeError::Malformed)?;
        self.skip_ws();
        if self.peek() != Some(b'=') {
            return Err(ChallengeError::Malformed);
        }
        // A token68 ends in `=` padding: `abc==` followed by end or comma.
        let mut j = self.i;
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        let mut k = j;
        while matches!(self.s.get(k), Some(b' ' | b'\t')) {
            k += 1;
        }
        if matches!(self.s.get(k), None | Some(b',')) {
            self.i = j;
            let raw = String::from_utf8_lossy(&self.s[start..j]).into_owned();
            return Ok((String::new(), raw));
        }
        self.i += 1;
        self.skip_ws();
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            let vstart = self.i;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_graphic() && c != b',' && c != b'"')
            {
                self.i += 1;
            }
            if self.i == vstart {
                return Err(ChallengeError::Malformed);
            }
            String::from_utf8_lossy(&self.s[vstart..self.i]).into_owned()
        };
        Ok((name.to_ascii_lowercase(), value))
    }
    fn quoted(&mut self) -> Result<String, ChallengeError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ChallengeError::Malformed),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or(ChallengeError::Malformed)?;
                    out.push(c);
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| ChallengeError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_gnapd_gateway_form() {
        let c =
            gnap_challenge([r#"GNAP as_uri="http://127.0.0.1:8470/gnap", access="mcp:github""#])
                .unwrap();
        assert_eq!(c.as_uri, "http://127.0.0.1:8470/gnap");
        assert_eq!(c.access.as_deref(), Some("mcp:github"));
    }

    #[test]
    fn challenge_rfc9635_section_9_1_unquoted_form() {
        let c = gnap_challenge(["GNAP as_uri=https://server.example/tx,access=FWWIKYBQ6U56NL1"])
            .unwrap();
        assert_eq!(c.as_uri, "https://server.example/tx");
        assert_eq!(c.access.as_deref(), Some("FWWIKYBQ6U56NL1"));
    }

    #[test]
    fn challenge_among_others_and_across_lines() {
        let c = gnap_challenge([
            r#"Basic realm="x""#,
            r#"Bearer realm="api", error="invalid_token", gnap as_uri="https://as.example/gnap""#,
        ])
        .unwrap();
        assert_eq!(c.as_uri, "https://as.example/gnap");
        assert_eq!(c.access, None);
        let all = parse_challenges(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].params[2],
            ("title".into(), "Login to \"apps\"".into())
        );
        assert_eq!(all[1].scheme, "Basic");
        let token68 = parse_challenges("Negotiate abc==, GNAP as_uri=https://a.example/g").unwrap();
        assert_eq!(token68[0].params, [(String::new(), "abc==".into())]);
        assert_eq!(token68[1].scheme, "GNAP");
    }

    #[test]
    fn challenge_refusals() {
        assert_eq!(
            gnap_challenge([r#"Bearer realm="x""#]),
            Err(ChallengeError::NoGnapChallenge)
        );
        assert_eq!(
            gnap_challenge([r#"GNAP access="mcp:x""#]),
            Err(ChallengeError::MissingAsUri)
        );
        assert_eq!(
            gnap_challenge([r#"GNAP as_uri="/gnap""#]),
            Err(ChallengeError::BadAsUri)
        );
        assert_eq!(
            gnap_challenge([r#"GNAP as_uri="ftp://x/gnap""#]),
            Err(ChallengeError::BadAsUri)
        );
        assert!(matches!(
            gnap_challenge([r#"GNAP as_uri="https://a/g", as_uri="https://b/g""#]),
            Err(ChallengeError::Repeated(_))
        ));
        assert_eq!(
            gnap_challenge([r#"GNAP as_uri="https://a/g"#]),
            Err(ChallengeError::Malformed)
        );
        assert_eq!(gnap_challenge([]), Err(ChallengeError::NoGnapChallenge));
    }
}
