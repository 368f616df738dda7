//! `gnapd interop-hook`: the person and the browser of `gnapd conformance
//! --approve-hook` when the AS under test is a gnapd in `--interop` mode.
//!
//! The suite runs the hook with the interaction in its environment
//! (`GNAP_INTERACT_URL` or `GNAP_USER_CODE`, `GNAP_DECISION`,
//! `GNAP_GRANT_ENDPOINT`). The hook decides through `POST
//! {public}/interop/decide` with the secret the server printed (and wrote to
//! `<data-dir>/interop.secret`), then, as the browser would, opens the
//! finish redirect, which lands on the suite's own listener. It prints the
//! server's answer as JSON and exits 0 when the decision was recorded.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::client::http::{AS_TIMEOUT, Http, MAX_AS_RESPONSE};
use crate::proto::httpsig::HttpRequest;

/// Arguments of `gnapd interop-hook`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file holding the automation secret (`<data-dir>/interop.secret`);
    /// else the environment variable `GNAPD_INTEROP_SECRET`.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
}

/// What the suite tells the hook, from its environment.
#[derive(Debug)]
struct Interaction {
    grant_endpoint: String,
    interact_url: Option<String>,
    user_code: Option<String>,
    approve: bool,
}

impl Interaction {
    fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let grant_endpoint = var("GNAP_GRANT_ENDPOINT").ok_or("GNAP_GRANT_ENDPOINT is not set")?;
        let approve = match var("GNAP_DECISION").as_deref() {
            None | Some("approve") => true,
            Some("deny") => false,
            Some(other) => return Err(format!("GNAP_DECISION {other:?} is not approve or deny")),
        };
        Ok(Self {
            grant_endpoint,
            interact_url: var("GNAP_INTERACT_URL"),
            user_code: var("GNAP_USER_CODE"),
            approve,
        })
    }

    /// The body of `POST /interop/decide`: the interaction by its URL if
    /// the AS gave one, else by its user code.
    fn decide_body(&self) -> Result<Value, String> {
        let decision = if self.approve { "approve" } else { "deny" };
        match (&self.interact_url, &self.user_code) {
            (Some(url), _) => Ok(json!({"interaction_url": url, "decision": decision})),
            (None, Some(code)) => Ok(json!({"user_code": code, "decision": decision})),
            (None, None) => Err("neither GNAP_INTERACT_URL nor GNAP_USER_CODE is set".into()),
        }
    }

    /// gnapd's public URL: its grant endpoint is `{public}/gnap`.
    fn public_url(&self) -> Result<&str, String> {
        self.grant_endpoint
            .strip_suffix(crate::authz::GRANT_PATH)
            .ok_or_else(|| format!("{} is not a gnapd grant endpoint", self.grant_endpoint))
    }
}

fn secret(args: &Args) -> Result<zeroize::Zeroizing<String>, String> {
    let text = match &args.secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => std::env::var("GNAPD_INTEROP_SECRET")
            .map_err(|_| "give --secret-file or set GNAPD_INTEROP_SECRET".to_owned())?,
    };
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

async fn decide(args: &Args) -> Result<Value, String> {
    let interaction = Interaction::from_env()?;
    let secret = secret(args)?;
    let http = Http::new(false).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&interaction.decide_body()?).map_err(|e| e.to_string())?;
    let request = HttpRequest::new(
        "POST",
        format!(
            "{}{}",
            interaction.public_url()?,
            crate::http::interop::DECIDE_PATH
        ),
    )
    .with_field("Content-Type", "application/json")
    .with_field("Authorization", format!("Bearer {}", secret.as_str()))
    .with_body(body);
    let answer = http
        .exchange(&request, AS_TIMEOUT, MAX_AS_RESPONSE)
        .await
        .map_err(|e| e.to_string())?;
    let mut decided: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status != 200 {
        return Err(format!("the server answered {}: {decided}", answer.status));
    }
    // The browser follows the finish redirect to the client's URI.
    if let Some(url) = decided["redirect_to"].as_str().map(str::to_owned) {
        let opened = http
            .exchange(&HttpRequest::new("GET", url), AS_TIMEOUT, MAX_AS_RESPONSE)
            .await;
        decided["browser"] = match opened {
            Ok(answer) => json!({"status": answer.status}),
            Err(e) => json!({"error": e.to_string()}),
        };
    }
    Ok(decided)
}

/// Runs `gnapd interop-hook`.
pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gnapd interop-hook: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(decide(&args)) {
        Ok(decided) => {
            println!("{decided}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gnapd interop-hook: {e}");
            ExitCode::FAILURE
        }
    }
}
