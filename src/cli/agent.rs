//! `gnapd agent request|continue|call|rotate|revoke`: the agent's protocol
//! steps one at a time, for scripts and for people who want to see each
//! exchange (`--trace` prints them on stderr). Each command prints one JSON
//! object on stdout and exits 0 when the server answered with a 2xx status,
//! 1 otherwise, 2 when it could not run (`{"error": "…"}`: bad arguments, no
//! answer).
//!
//! The key must outlive one command, so these commands take `--key-file`
//! (created 0600 on first use).

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};

use super::relay::{GrantArgs, KeyArgs, init_logging};
use crate::client::ClientError;
use crate::client::agent::{Agent, SigningClient};
use crate::client::grant::{grant_request, start_modes};
use crate::client::http::{AS_TIMEOUT, Answer};
use crate::proto::httpsig::HttpRequest;

/// Arguments of `gnapd agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Ask for a grant. Without --as-uri, call RESOURCE first and read its
    /// 401 challenge. Prints the AS's grant response; with --wait, follows
    /// interaction and polling to the end and prints the token.
    Request {
        /// The resource (gateway URL) the access is for.
        #[arg(value_name = "RESOURCE_URL")]
        resource: Option<String>,
        #[command(flatten)]
        key: KeyRequired,
        #[command(flatten)]
        grant: GrantArgs,
        /// Interact and poll until the grant is approved or refused.
        #[arg(long)]
        wait: bool,
    },
    /// Continue a grant (RFC 9635 §5): POST to its continuation URI.
    Continue {
        /// The continuation URI.
        uri: String,
        /// The continuation access token.
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// The interaction reference, after a redirect finish (§5.1).
        #[arg(long, allow_hyphen_values = true)]
        interact_ref: Option<String>,
        #[command(flatten)]
        key: KeyRequired,
    },
    /// Call a resource with an access token: a signed request.
    Call {
        /// The resource URL.
        url: String,
        /// The access token.
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// The HTTP method.
        #[arg(long, default_value = "POST")]
        method: String,
        /// The JSON body (sent as application/json).
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
        /// An extra header, `Name: value`. Repeatable.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        #[command(flatten)]
        key: KeyRequired,
    },
    /// Rotate an access token (§6.1) through its management URI.
    Rotate {
        /// The management URI.
        uri: String,
        /// The token management access token.
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        #[command(flatten)]
        key: KeyRequired,
    },
    /// Revoke an access token (§6.2) through its management URI, or delete
    /// a grant (§5.4) with --grant and its continuation URI and token.
    Revoke {
        /// The management URI (or, with --grant, the continuation URI).
        uri: String,
        /// The token management (or continuation) access token.
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// Delete the whole grant through its continuation URI.
        #[arg(long)]
        grant: bool,
        #[command(flatten)]
        key: KeyRequired,
    },
}

/// The key options, with the file required.
#[derive(Debug, clap::Args)]
struct KeyRequired {
    /// The agent's private key (created 0600 if absent): every step of one
    /// grant must be signed by the same key.
    #[arg(long, value_name = "PATH", required = true)]
    key_file: std::path::PathBuf,
    /// The key algorithm for a new key [default: ed25519].
    #[arg(long, value_enum)]
    alg: Option<super::relay::KeyAlg>,
    /// Print every HTTP exchange on stderr (token values included).
    #[arg(long)]
    trace: bool,
}

impl KeyRequired {
    fn signing_client(&self) -> Result<SigningClient, ClientError> {
        KeyArgs {
            key_file: Some(self.key_file.clone()),
            alg: self.alg,
            trace: self.trace,
        }
        .signing_client()
    }
}

/// Runs `gnapd agent …`.
pub fn run(args: Args) -> ExitCode {
    init_logging("warn");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gnapd agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(step(args.command)) {
        Ok((ok, output)) => {
            // The answer carries the servers' words: JSON with every
            // terminal and bidi control escaped.
            println!("{}", crate::proto::text::escape_json(&output.to_string()));
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(Usage(message)) => {
            // Still one JSON object on stdout, for scripts.
            let shown = json!({"error": message}).to_string();
            println!("{}", crate::proto::text::escape_json(&shown));
            eprintln!("gnapd agent: {}", crate::proto::text::escape(&message));
            ExitCode::from(2)
        }
    }
}

struct Usage(String);

impl From<ClientError> for Usage {
    fn from(e: ClientError) -> Self {
        Self(e.for_cli())
    }
}

/// One answer as JSON: the status, and the body (JSON when it is).
fn answer_json(answer: &Answer) -> Value {
    let body = if answer.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&answer.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()))
    };
    let headers: serde_json::Map<String, Value> = answer
        .headers
        .keys()
        .map(|name| {
            let values: Vec<Value> = answer
                .header_values(name.as_str())
                .map(|v| Value::String(v.to_owned()))
                .collect();
            (name.as_str().to_owned(), Value::Array(values))
        })
        .collect();
    json!({"status": answer.status, "headers": headers, "body": body})
}

fn ok(answer: &Answer) -> bool {
    (200..300).contains(&answer.status)
}

async fn step(command: Command) -> Result<(bool, Value), Usage> {
    match command {
        Command::Request {
            resource,
            key,
            grant,
            wait,
        } => {
            let options = grant.options().map_err(|e| Usage(e.to_string()))?;
            let wire = key.signing_client()?;
            if wait {
                let resource = resource.unwrap_or_default();
                let agent = Agent::new(
                    wire,
                    resource,
                    options,
                    Arc::new(grant.prompter("gnapd agent")),
                );
                return match agent.token().await {
                    Ok(_) => {
                        let held = agent.grant().await;
                        Ok((true, held.map(|g| grant_json(&g)).unwrap_or(Value::Null)))
                    }
                    Err(e) => Ok((false, json!({"error": e.for_cli()}))),
                };
            }
            let (as_uri, access) = match (&options.as_uri, &resource) {
                (Some(uri), _) if options.access.is_some() => (uri.clone(), options.access.clone()),
                (_, Some(resource)) => {
                    let challenge = wire.challenge(resource).await?;
                    let access = options.access.clone().or_else(|| {
                        challenge
                            .access
                            .clone()
                            .map(crate::client::grant::AccessSpec::Reference)
                    });
                    (options.as_uri.clone().unwrap_or(challenge.as_uri), access)
                }
                _ => {
                    return Err(Usage("give RESOURCE_URL, or --as-uri with --access".into()));
                }
            };
            let access = match (access, options.tools.is_empty(), &resource) {
                (_, false, Some(resource)) => {
                    let upstream =
                        crate::client::grant::upstream_of_url(resource).ok_or_else(|| {
                            Usage("cannot tell the upstream from RESOURCE_URL".into())
                        })?;
                    crate::client::grant::AccessSpec::Tools {
                        upstream: upstream.to_owned(),
                        tools: options.tools.clone(),
                    }
                }
                (Some(access), true, _) => access,
                _ => return Err(Usage("no access to ask for: give --access".into())),
            };
            let modes = if options.interact {
                let advertised = wire.discovery(&as_uri).await;
                start_modes(
                    advertised
                        .as_ref()
                        .map(|d| d.interaction_start_modes_supported.as_slice()),
                )
            } else {
                Vec::new()
            };
            let body = grant_request(wire.key(), &options.display_name, &access, &modes, None);
            let answer = wire.grant(&as_uri, &body, resource.as_deref()).await?;
            Ok((ok(&answer), answer_json(&answer)["body"].clone()))
        }
        Command::Continue {
            uri,
            token,
            interact_ref,
            key,
        } => {
            let wire = key.signing_client()?;
            let body = interact_ref.map(|r| json!({"interact_ref": r}));
            let answer = wire.continue_grant(&uri, &token, body.as_ref()).await?;
            Ok((ok(&answer), answer_json(&answer)["body"].clone()))
        }
        Command::Call {
            url,
            token,
            method,
            data,
            headers,
            key,
        } => {
            let wire = key.signing_client()?;
            let mut request = HttpRequest::new(method.to_ascii_uppercase(), url);
            request
                .fields
                .append("Accept", "application/json, text/event-stream");
            if let Some(data) = data {
                serde_json::from_str::<Value>(&data)
                    .map_err(|e| Usage(format!("--data is not JSON: {e}")))?;
                request.fields.append("Content-Type", "application/json");
                request.body = data.into_bytes();
            }
            for header in headers {
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| Usage(format!("--header {header:?} is not `Name: value`")))?;
                request.fields.append(name.trim(), value.trim());
            }
            wire.sign(&mut request, Some(&token))?;
            let answer = wire
                .http()
                .exchange(&request, AS_TIMEOUT, crate::client::relay::MAX_MESSAGE)
                .await?;
            Ok((ok(&answer), answer_json(&answer)))
        }
        Command::Rotate { uri, token, key } => {
            let answer = key.signing_client()?.rotate(&uri, &token).await?;
            Ok((ok(&answer), answer_json(&answer)["body"].clone()))
        }
        Command::Revoke {
            uri,
            token,
            grant,
            key,
        } => {
            let wire = key.signing_client()?;
            let answer = if grant {
                wire.delete_grant(&uri, &token).await?
            } else {
                wire.revoke(&uri, &token).await?
            };
            Ok((
                ok(&answer),
                json!({"status": answer.status, "body": answer_json(&answer)["body"]}),
            ))
        }
    }
}

/// A held grant as JSON, in the grant response's own shape (§3).
fn grant_json(grant: &crate::client::agent::Grant) -> Value {
    let mut token = json!({"value": grant.issued.token.expose()});
    if let Some(manage) = &grant.issued.manage {
        token["manage"] = json!({
            "uri": manage.uri,
            "access_token": {"value": manage.access_token.value.expose()},
        });
    }
    if let Some(access) = &grant.issued.access {
        token["access"] = access.clone();
    }
    if let Some(expires_in) = grant.issued.expires_in {
        token["expires_in"] = json!(expires_in);
    }
    let mut out = json!({"access_token": token});
    if let Some(cont) = &grant.continue_ {
        out["continue"] = json!({
            "uri": cont.uri,
            "wait": cont.wait,
            "access_token": {"value": cont.access_token.value.expose()},
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::Cli;

    /// Token values and interaction references are random base64url: a
    /// value may begin with `-` and must still be read as the value.
    #[test]
    fn agent_cli_takes_token_values_beginning_with_a_dash() {
        for argv in [
            &[
                "gnapd",
                "agent",
                "call",
                "http://gw/mcp/x",
                "--token",
                "-dX_1",
                "--key-file",
                "k",
            ][..],
            &[
                "gnapd",
                "agent",
                "rotate",
                "http://as/m",
                "--token",
                "--x",
                "--key-file",
                "k",
            ],
            &[
                "gnapd",
                "agent",
                "revoke",
                "http://as/m",
                "--token",
                "-d",
                "--key-file",
                "k",
            ],
            &[
                "gnapd",
                "agent",
                "continue",
                "http://as/c",
                "--token",
                "-T",
                "--interact-ref",
                "-R",
                "--key-file",
                "k",
            ],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let debug = format!("{cli:?}");
            let value = argv[argv.iter().position(|a| *a == "--token").unwrap() + 1];
            assert!(debug.contains(&format!("token: {value:?}")), "{debug}");
        }
    }
}
