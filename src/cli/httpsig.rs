//! `gnapd httpsig base|verify|sign`: RFC 9421 tooling for people debugging
//! interop. Reads a request written as HTTP/1.1 text from `--file` or stdin.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::clock::{Clock as _, SystemClock};
use crate::proto::httpsig::input::signature_inputs;
use crate::proto::httpsig::message::parse_raw_request;
use crate::proto::httpsig::verify::verify_signature;
use crate::proto::httpsig::{
    Algorithm, GnapProfile, HttpRequest, Message, SignOptions, sign_gnap, signature_base,
};
use crate::proto::jwk::{SigningKey, VerifyingKey};

/// Arguments of `gnapd httpsig`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// Read the request from this file instead of stdin.
    #[arg(long, global = true)]
    file: Option<PathBuf>,
    /// Scheme used to complete an origin-form target (`/path`) with `Host`.
    #[arg(long, global = true, default_value = "https")]
    scheme: String,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print the signature base of each signature in the request (or of one).
    Base {
        /// Only the signature with this label.
        #[arg(long)]
        label: Option<String>,
    },
    /// Verify the request's signatures against a public JWK. Exit 0 only if
    /// a signature verifies.
    Verify {
        /// The signer's public key (JWK).
        #[arg(long)]
        jwk: PathBuf,
        /// `gnap`: every RFC 9635 §7.3.1 rule; `rfc9421`: the signature alone.
        #[arg(long, value_enum, default_value_t = Profile::Gnap)]
        profile: Profile,
        /// Algorithm, when the JWK does not imply one (RSA keys, `oct` keys).
        #[arg(long)]
        alg: Option<String>,
        /// The time to check `created` against (Unix seconds; default now).
        #[arg(long)]
        now: Option<i64>,
    },
    /// Sign the request under the GNAP profile and print it.
    Sign {
        /// The signer's private key (JWK).
        #[arg(long)]
        jwk: PathBuf,
        /// The signature label.
        #[arg(long, default_value = "sig1")]
        label: String,
        /// Do not add a nonce.
        #[arg(long)]
        no_nonce: bool,
        /// The `created` time (Unix seconds; default now).
        #[arg(long)]
        now: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    Gnap,
    Rfc9421,
}

/// A failure the command reports on stderr before exiting non-zero.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// Runs `gnapd httpsig`.
pub fn run(args: Args) -> ExitCode {
    match execute(args) {
        Ok(code) => code,
        Err(Failure(message)) => {
            let _ = writeln!(
                std::io::stderr(),
                "gnapd httpsig: {}",
                crate::proto::text::escape(&message)
            );
            ExitCode::from(2)
        }
    }
}

fn execute(args: Args) -> Result<ExitCode, Failure> {
    let raw = match &args.file {
        Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
    };
    let request = parse_raw_request(&raw, &args.scheme)
        .map_err(|e| format!("cannot read the request: {e:?}"))?;
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::Base { label } => {
            for input in signature_inputs(&request.fields)? {
                if label.as_ref().is_some_and(|l| *l != input.label) {
                    continue;
                }
                let base = signature_base(Message::Request(&request), &input.params)?;
                writeln!(out, "# {}", input.label)?;
                // The request may come from anyone: a field value's terminal
                // controls are shown escaped, line by line (a value never
                // holds a line break; the base's own separate its lines).
                for line in String::from_utf8_lossy(&base).split('\n') {
                    writeln!(out, "{}", crate::proto::text::escape(line))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Verify {
            jwk,
            profile,
            alg,
            now,
        } => {
            let key = verifying_key(&jwk, alg.as_deref())?;
            let now = now.unwrap_or_else(|| SystemClock.now());
            verify(&mut out, &request, &key, profile, now)
        }
        Action::Sign {
            jwk,
            label,
            no_nonce,
            now,
        } => {
            let text = std::fs::read(&jwk).map_err(|e| format!("{}: {e}", jwk.display()))?;
            let value: serde_json::Value = serde_json::from_slice(&text)?;
            let key = SigningKey::from_private_jwk(&value, None)?;
            let mut request = request;
            let options = SignOptions {
                label,
                nonce: !no_nonce,
                ..SignOptions::default()
            };
            sign_gnap(
                &mut request,
                &key,
                now.unwrap_or_else(|| SystemClock.now()),
                &options,
            )?;
            write_raw(&mut out, &request)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verifying_key(path: &PathBuf, alg: Option<&str>) -> Result<VerifyingKey, Failure> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text)?;
    let alg = match alg {
        Some(name) => {
            Some(Algorithm::from_name(name).ok_or_else(|| format!("unknown algorithm {name}"))?)
        }
        None => None,
    };
    if value["kty"] == "oct" {
        return Ok(VerifyingKey::from_shared_secret_jwk(&value)?);
    }
    Ok(VerifyingKey::from_public_jwk(&value, alg)?)
}

fn verify(
    out: &mut impl std::io::Write,
    request: &HttpRequest,
    key: &VerifyingKey,
    profile: Profile,
    now: i64,
) -> Result<ExitCode, Failure> {
    let mut any_ok = false;
    match profile {
        Profile::Gnap => {
            for (label, broken) in GnapProfile::default().diagnose(request, key, now)? {
                if broken.is_empty() {
                    writeln!(out, "{label}: ok (GNAP profile, key {})", key.thumbprint())?;
                    any_ok = true;
                }
                for rule in broken {
                    writeln!(out, "{label}: FAIL {}: {rule}", rule.reason())?;
                }
            }
        }
        Profile::Rfc9421 => {
            let sigs = crate::proto::httpsig::input::signatures(&request.fields)?;
            for input in signature_inputs(&request.fields)? {
                let Some((_, sig)) = sigs.iter().find(|(l, _)| *l == input.label) else {
                    writeln!(out, "{}: FAIL no Signature member", input.label)?;
                    continue;
                };
                match verify_signature(Message::Request(request), &input.params, sig, key) {
                    Ok(_) => {
                        writeln!(out, "{}: ok (RFC 9421)", input.label)?;
                        any_ok = true;
                    }
                    Err(e) => writeln!(out, "{}: FAIL {e}", input.label)?,
                }
            }
        }
    }
    Ok(if any_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes a request back as HTTP/1.1 text in origin form.
fn write_raw(out: &mut impl std::io::Write, request: &HttpRequest) -> std::io::Result<()> {
    // Origin form when a Host field can restore the authority, else the
    // absolute form, so the output reads back as the same request.
    let uri = crate::proto::httpsig::message::TargetUri::parse(&request.target_uri);
    let target = match uri {
        Ok(u) if request.fields.contains("host") => {
            let mut t = u.normalized_path().to_owned();
            if let Some(q) = u.query {
                t.push('?');
                t.push_str(q);
            }
            t
        }
        _ => request.target_uri.clone(),
    };
    write!(out, "{} {target} HTTP/1.1\r\n", request.method)?;
    for (name, value) in request.fields.iter() {
        write!(out, "{name}: ")?;
        out.write_all(value)?;
        out.write_all(b"\r\n")?;
    }
    out.write_all(b"\r\n")?;
    out.write_all(&request.body)
}
