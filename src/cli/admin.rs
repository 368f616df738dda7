//! `gnapd upstream …`, `gnapd credentials …` and `gnapd grants …`: change a
//! running server through its admin socket (`crate::admin`). They never open
//! the data dir's store: sled allows one process per database.

use std::borrow::Cow;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::admin::socket::{CallError, call};
use crate::proto::text::{escape, escape_json};

/// Where the server is.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The running server's data directory (as given to `gnapd serve`).
    #[arg(long, default_value = "./gnapd-data", global = true)]
    data_dir: PathBuf,
    /// Print the server's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

/// Arguments of `gnapd upstream`.
#[derive(Debug, clap::Args)]
pub struct UpstreamArgs {
    #[command(subcommand)]
    command: UpstreamCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum UpstreamCommand {
    /// Add a Streamable HTTP upstream at `{public}/mcp/NAME` (kept across
    /// restarts).
    Add {
        /// Its name.
        name: String,
        /// Its URL.
        url: String,
    },
    /// List the upstreams.
    List,
    /// Remove an upstream added with `add`, its credential set and the
    /// tokens mapped to that set.
    Remove {
        /// Its name.
        name: String,
    },
}

/// Arguments of `gnapd credentials`.
#[derive(Debug, clap::Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    command: CredentialsCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum CredentialsCommand {
    /// Store the enterprise-held credential set of an upstream, sealed
    /// under the server's master key; tokens approved for the upstream are
    /// mapped to it. Replacing it keeps existing tokens working with the
    /// new secret.
    Add {
        /// The upstream.
        upstream: String,
        /// `bearer:VALUE`, `header:Header-Name:VALUE` or `basic:USER:PASS`;
        /// `-` (the default) reads it from standard input, which keeps it
        /// out of the process list.
        #[arg(default_value = "-")]
        credential: String,
    },
    /// List the credential sets (never their secrets).
    List,
    /// Remove an upstream's enterprise-held set (by the upstream's name)
    /// or a person-connected set (by its `person:…` id, from `list`);
    /// revokes the tokens mapped to it.
    Remove {
        /// The upstream, or a person-connected set's id.
        #[arg(value_name = "UPSTREAM|SET-ID")]
        upstream: String,
    },
}

/// Arguments of `gnapd grants`.
#[derive(Debug, clap::Args)]
pub struct GrantsArgs {
    #[command(subcommand)]
    command: GrantsCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum GrantsCommand {
    /// List the grants waiting for a person: id, user code, the client's
    /// (unverified) name, its key thumbprint, the access asked for, age.
    Pending,
    /// Approve a pending grant, by the user code the agent shows
    /// (`ABCD-EFGH`, any case) or by grant id. With a `redirect` finish,
    /// prints the URL to open in the browser that started the interaction;
    /// a `push` finish is sent to the client at once.
    Approve {
        /// The user code or grant id.
        code: String,
    },
    /// Deny a pending grant, by user code or grant id.
    Deny {
        /// The user code or grant id.
        code: String,
    },
}

/// Runs `gnapd grants`.
pub fn grants(args: GrantsArgs) -> ExitCode {
    let (command, print): (Value, fn(&Value)) = match args.command {
        GrantsCommand::Pending => (json!({"op": "grants_pending"}), print_pending),
        GrantsCommand::Approve { code } => (
            json!({"op": "grants_approve", "code": code}),
            print_decision,
        ),
        GrantsCommand::Deny { code } => {
            (json!({"op": "grants_deny", "code": code}), print_decision)
        }
    };
    finish("grants", &args.target, &command, print)
}

fn print_pending(result: &Value) {
    print!("{}", pending_listing(result));
}

/// The `grants pending` listing: one line per grant, then its signed-in
/// subject and one line per access right.
fn pending_listing(result: &Value) -> String {
    use std::fmt::Write as _;
    let Some(list) = result["pending"].as_array() else {
        return format!("{}\n", json_text(result));
    };
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("no grant is waiting for a decision\n");
    }
    for g in list {
        let _ = writeln!(
            out,
            "{}  code {}  \"{}\" (unverified name)  key {}  asked {}s ago, expires in {}s",
            text(&g["grant"]),
            text(&g["user_code"]),
            text_or(&g["display_name"], "(no name)"),
            text(&g["thumbprint"]),
            g["age"].as_i64().unwrap_or(0),
            g["expires_in"].as_i64().unwrap_or(0),
        );
        if let Some(subject) = g["signed_in"].as_str() {
            let _ = writeln!(out, "    signed in on its page: {}", escape(subject));
        }
        for line in g["access"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "    - {}", text(line));
        }
    }
    out
}

fn print_decision(result: &Value) {
    println!(
        "{} grant {}",
        text(&result["decision"]),
        text(&result["grant"])
    );
    match result["finish"].as_str() {
        Some("redirect") => println!(
            "open this URL in the browser that started the interaction:\n{}",
            text(&result["redirect_to"])
        ),
        Some("push") => println!("push to the client: {}", text(&result["push"])),
        _ => println!("the client learns it when it next polls"),
    }
}

/// Runs `gnapd upstream`.
pub fn upstream(args: UpstreamArgs) -> ExitCode {
    let command = match args.command {
        UpstreamCommand::Add { name, url } => {
            json!({"op": "upstream_add", "name": name, "url": url})
        }
        UpstreamCommand::List => json!({"op": "upstream_list"}),
        UpstreamCommand::Remove { name } => json!({"op": "upstream_remove", "name": name}),
    };
    finish("upstream", &args.target, &command, print_upstreams)
}

/// Runs `gnapd credentials`.
pub fn credentials(args: CredentialsArgs) -> ExitCode {
    let command = match args.command {
        CredentialsCommand::Add {
            upstream,
            credential,
        } => {
            let credential = if credential == "-" {
                let mut text = Zeroizing::new(String::new());
                if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                    eprintln!("gnapd credentials: cannot read the credential: {e}");
                    return ExitCode::from(2);
                }
                Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                Zeroizing::new(credential)
            };
            json!({"op": "credentials_add", "upstream": upstream, "credential": credential.as_str()})
        }
        CredentialsCommand::List => json!({"op": "credentials_list"}),
        CredentialsCommand::Remove { upstream } => {
            if upstream.starts_with(crate::upstream::connect::PERSON_SET_PREFIX) {
                json!({"op": "credentials_remove_set", "id": upstream})
            } else {
                json!({"op": "credentials_remove", "upstream": upstream})
            }
        }
    };
    finish("credentials", &args.target, &command, print_sets)
}

fn finish(name: &str, target: &Target, command: &Value, print: fn(&Value)) -> ExitCode {
    match call(&target.data_dir, command) {
        Ok(result) if target.json => {
            println!("{}", json_text(&result));
            ExitCode::SUCCESS
        }
        Ok(result) => {
            print(&result);
            ExitCode::SUCCESS
        }
        Err(e @ CallError::NotServing { .. }) => {
            let advice = format!(
                "{e}; start `gnapd serve --data-dir {}` first",
                target.data_dir.display()
            );
            eprintln!("gnapd {name}: {}", escape(&advice));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gnapd {name}: {}", escape(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

// Everything printed below came from the server, and much of it from
// outside before that (client names, access, upstream names, subjects):
// terminal and bidi controls are escaped so that no value can hide or
// rewrite a line the admin reads (`crate::proto::text`).

fn text(v: &Value) -> Cow<'_, str> {
    text_or(v, "-")
}

fn text_or<'v>(v: &'v Value, absent: &'v str) -> Cow<'v, str> {
    escape(v.as_str().unwrap_or(absent))
}

fn json_text(v: &Value) -> String {
    escape_json(&v.to_string()).into_owned()
}

fn print_upstreams(result: &Value) {
    let Some(list) = result["upstreams"].as_array() else {
        println!("{}", json_text(result));
        return;
    };
    for u in list {
        println!(
            "{}\t{}\t{}\t{}",
            text(&u["name"]),
            text(&u["url"]),
            text(&u["source"]),
            text(&u["credential_set"])
        );
    }
}

fn print_sets(result: &Value) {
    let Some(list) = result["credential_sets"].as_array() else {
        println!("{}", json_text(result));
        return;
    };
    for s in list {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            text(&s["id"]),
            text(&s["upstream"]),
            text(&s["kind"]),
            if s["assigned"] == Value::Bool(true) {
                "assigned"
            } else {
                "-"
            },
            text(&s["owner"]),
        );
    }
}

/// Arguments of `gnapd admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Print a fresh one-time sign-in link for the operator: opened in a
    /// browser, it lets that browser approve or deny grants on the pages.
    /// The previous link stops working; the link is also written to
    /// `<data-dir>/operator-login`.
    LoginLink,
    /// Sign every operator's browser out (and void the sign-in link).
    Logout,
}

/// Runs `gnapd admin`.
pub fn admin(args: AdminArgs) -> ExitCode {
    let (command, print): (Value, fn(&Value)) = match args.command {
        AdminCommand::LoginLink => (json!({"op": "operator_link"}), |result| {
            println!("{}", text(&result["link"]));
        }),
        AdminCommand::Logout => (json!({"op": "operator_sign_out"}), |result| {
            println!(
                "signed out {} operator session(s)",
                result["signed_out"].as_u64().unwrap_or(0)
            );
        }),
    };
    finish("admin", &args.target, &command, print)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::text::is_hidden;

    /// What a client controls in the listing, each trying to hide or
    /// rewrite a line: erase the line and return (`ESC [2K CR`), move up
    /// (`ESC [1A`, and the C1 CSI form), and a right-to-left override.
    const ATTACKS: [&str; 4] = [
        "x\x1b[2K\r8f1c  code AAAA-BBBB  \"Company laptop\"",
        "x\x1b[1A\x1b[2K",
        "x\u{9b}1A",
        "\u{202e}buhtig retsam ot ssecca lluf",
    ];

    #[test]
    fn the_pending_listing_escapes_what_could_hide_or_rewrite_a_line() {
        for attack in ATTACKS {
            let result = json!({"pending": [{
                "grant": "g-1",
                "user_code": "WXYZ-1234",
                "display_name": attack,
                "thumbprint": "tp",
                "age": 3,
                "expires_in": 60,
                "signed_in": attack,
                "access": [attack, "full access to MCP upstream `github`"],
            }]});
            let listing = pending_listing(&result);
            // No hidden character but the listing's own line ends.
            assert!(
                !listing.chars().filter(|c| *c != '\n').any(is_hidden),
                "{listing:?}"
            );
            // Exactly the lines the listing writes: a grant, its subject,
            // two access rights; none added, none erased.
            let lines: Vec<&str> = listing.lines().collect();
            assert_eq!(lines.len(), 4, "{listing:?}");
            assert!(
                lines[0].starts_with("g-1  code WXYZ-1234  \""),
                "{listing:?}"
            );
            assert!(lines[0].ends_with("expires in 60s"), "{listing:?}");
            assert!(lines[1].starts_with("    signed in on its page: "));
            assert_eq!(lines[3], "    - full access to MCP upstream `github`");
            assert!(
                lines[2].contains("\\u{"),
                "the escape is shown: {listing:?}"
            );
        }
    }

    #[test]
    fn json_output_and_other_listings_escape_too() {
        let attack = ATTACKS[3];
        let result = json!({"upstreams": [{"name": attack, "url": attack, "source": "admin"}]});
        assert!(!json_text(&result).chars().any(is_hidden));
        assert_eq!(
            serde_json::from_str::<Value>(&json_text(&result)).unwrap(),
            result
        );
        let odd = json!({"other": attack});
        assert!(!pending_listing(&odd).trim_end().chars().any(is_hidden));
        assert_eq!(text(&json!(ATTACKS[0])).lines().count(), 1);
    }
}
