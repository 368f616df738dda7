//! Flooding: [`N`] unauthenticated requests that each make the server keep
//! something (GNAP: grant requests by fresh keys; OAuth DCR: RFC 7591
//! registrations; OAuth CIMD: authorization requests naming a client by a
//! URL), against an instance of its own with DEFAULT limits that waits for
//! a person (`--dev --require-interaction`: nothing is approved, so what
//! grows is what a stranger can make the server keep). The store's growth
//! is read from the admin socket; a refusal (429 or a cap) is a bound
//! stopping it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use crate::clock::{Clock as _, SystemClock};
use crate::proto::alg::Algorithm;
use crate::proto::httpsig::HttpRequest;
use crate::proto::httpsig::profile::{SignOptions, sign_gnap};
use crate::proto::jwk::SigningKey;

use super::super::driver::DriverError;
use super::super::harness::{Instance, InstanceSpec};
use super::super::meter::{Meter, Request, Tap};
use super::super::oauth;
use super::super::probe::state::{self, Size};
use super::super::variant::{Identification, Variant};
use super::super::world::World;
use super::Observed;
use super::observe::describe;
use super::wire::to_meter;

/// Requests per flood: more than the largest per-address bound gnapd
/// keeps by default (100 grants waiting for a person per address; 10
/// registrations per address in a burst), so a bound that exists is met.
pub const N: usize = 150;

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    if variant.is_external() {
        return external(world, tap).await;
    }
    let instance = start(world, variant)?;
    let before = state::server(&instance.data_dir).map_err(DriverError::Protocol)?;
    let fetched_before = world.outbound.snapshot();
    let mut meter = Meter::agent(tap);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut first_limited = None;
    let mut first_refusal = None;
    for i in 0..N {
        let request = request(&instance, variant, i)?;
        let response = meter.send(request).await?;
        if response.status >= 400 && first_refusal.is_none() {
            first_limited = Some(i + 1);
            first_refusal = Some(describe(&response));
        }
        *statuses.entry(response.status).or_default() += 1;
    }
    let after = state::server(&instance.data_dir).map_err(DriverError::Protocol)?;
    let fetched = fetches(&fetched_before, &world.outbound.snapshot());
    let grown = growth(&before, &after);
    let records: u64 = grown.values().map(|s| s.records).sum();
    let bytes: u64 = grown.values().map(|s| s.bytes).sum();
    let what = match (variant.is_gnap(), variant.identification()) {
        (true, _) => "grant requests, each signed by a fresh key",
        (false, Identification::Cimd) => "authorization requests, each naming a new client URL",
        (false, _) => "RFC 7591 registrations",
    };
    let tables = grown
        .iter()
        .map(|(table, size)| format!("{table} +{}", size.records))
        .collect::<Vec<_>>()
        .join(", ");
    let statuses = statuses
        .iter()
        .map(|(status, n)| format!("{n}× {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    let limited = match first_limited {
        Some(at) => format!("the server refused from request {at} on"),
        None => "no request refused (default limits)".to_owned(),
    };
    let fetched = if fetched > 0 {
        format!("; the AS fetched {fetched} documents")
    } else {
        String::new()
    };
    let refusal = first_refusal
        .map(|r| format!(" (the first refusal: {r})"))
        .unwrap_or_default();
    let evidence = format!(
        "{N} unauthenticated {what}: {statuses}{refusal}; {limited}{fetched}; the server kept +{records} \
         records (+{bytes} bytes){}.",
        if tables.is_empty() {
            String::new()
        } else {
            format!(": {tables}")
        }
    );
    // Blocked: the flood left nothing behind, or a bound cut it short
    // (what was kept up to the bound is in the evidence). Otherwise every
    // request bought the stranger state on the server.
    if records == 0 || first_limited.is_some() {
        Ok(Observed::blocked(evidence))
    } else {
        Ok(Observed::succeeded(evidence))
    }
}

/// An instance of this attack's own: `--dev --require-interaction`, the
/// world's upstreams and nothing else in its config (default limits).
fn start(world: &World, variant: Variant) -> Result<Instance, DriverError> {
    let setup =
        |what: &str, e: &dyn std::fmt::Display| DriverError::Protocol(format!("{what}: {e}"));
    // The binary the world's instances run (the command's own, or the one
    // a test names), read back from the running process.
    let exe = std::fs::read_link(format!("/proc/{}/exe", world.auto.pid()))
        .map_err(|e| setup("the gnapd binary", &e))?;
    let work: PathBuf = world
        .auto
        .data_dir
        .parent()
        .and_then(|dir| dir.parent())
        .map(PathBuf::from)
        .ok_or_else(|| DriverError::Protocol("no work dir".to_owned()))?;
    let spec = InstanceSpec {
        name: format!("flood-{}", variant.id()),
        flags: vec!["--dev".to_owned(), "--require-interaction".to_owned()],
        // The document host's CA (CIMD clients must resolve), nothing else:
        // no raised limits.
        config: super::super::documents::shared()
            .map(|host| host.config())
            .unwrap_or_default(),
        listen: None,
    };
    Instance::start(&exe, &work, &spec, &world.upstream.config())
        .map_err(|e| setup("the flood instance", &e))
}

/// The `i`th request of the flood for `variant`.
fn request(instance: &Instance, variant: Variant, i: usize) -> Result<Request, DriverError> {
    let key_error = |e: &dyn std::fmt::Display| DriverError::Protocol(format!("key: {e}"));
    let base = &instance.base;
    if variant.is_gnap() {
        let algorithm = match variant.binding() {
            super::super::variant::Binding::HttpSigP256 => Algorithm::EcdsaP256Sha256,
            _ => Algorithm::Ed25519,
        };
        let key = SigningKey::generate(algorithm).map_err(|e| key_error(&e))?;
        let body = json!({
            "access_token": {"access": ["mcp:alpha"]},
            "client": {"key": {"proof": "httpsig", "jwk": key.verifying_key().public_jwk()}},
            "interact": {"start": ["redirect"], "finish": {
                "method": "redirect",
                "uri": format!("http://127.0.0.1:9/finish/{i}"),
                "nonce": format!("flood-nonce-{i}"),
            }},
        });
        let mut signed = HttpRequest::new("POST", instance.grant_endpoint.clone())
            .with_field("Content-Type", "application/json")
            .with_body(body.to_string().into_bytes());
        sign_gnap(
            &mut signed,
            &key,
            SystemClock.now(),
            &SignOptions::default(),
        )
        .map_err(|e| key_error(&e))?;
        return Ok(to_meter(&signed));
    }
    let registration = match (variant.identification(), variant) {
        (Identification::Cimd, _) => {
            // A new client each time, named by a document the attacker
            // publishes: the AS fetches it and decides what it keeps. No
            // `resource`: the attacker skipped discovery.
            let host = super::super::documents::shared()
                .ok_or_else(|| DriverError::Protocol("no metadata-document host".into()))?;
            let client_id = host
                .publish(&oauth::register::code_client())
                .map_err(DriverError::Protocol)?;
            let pkce = oauth::pkce::Pkce::new()?;
            let mut query = form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client_id)
                .append_pair("redirect_uri", oauth::register::REDIRECT_URI)
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &format!("flood-{i}"));
            return Ok(Request::new(
                "GET",
                &format!("{base}/oauth/authorize?{}", query.finish()),
            ));
        }
        (_, Variant::OAuthClientCredentials) => {
            let key =
                SigningKey::generate(Algorithm::EcdsaP256Sha256).map_err(|e| key_error(&e))?;
            json!({
                "client_name": format!("flood {i}"),
                "redirect_uris": [],
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [key.verifying_key().public_jwk()]},
            })
        }
        _ => json!({
            "client_name": format!("flood {i}"),
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
        }),
    };
    Ok(Request::new("POST", &format!("{base}/oauth/register")).json(&registration))
}

/// The external AS's column: [`N`] open RFC 7591 registrations at
/// node-oidc-provider. Its store (the in-memory adapter) cannot be read,
/// so the answers judge: each 201 hands out a client ID (and a
/// registration access token) the AS must keep to honour later.
async fn external(world: &World, tap: &Tap) -> Result<Observed, DriverError> {
    let provider = &world
        .external
        .as_ref()
        .ok_or_else(|| DriverError::Protocol("no external AS".into()))?
        .provider;
    let mut meter = Meter::agent(tap);
    let metadata = oauth::discovery::as_metadata(&mut meter, &provider.issuer).await?;
    let endpoint = metadata.registration_endpoint.ok_or_else(|| {
        DriverError::Protocol("the external AS has no registration endpoint".into())
    })?;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut clients = std::collections::BTreeSet::new();
    let mut first_refusal = None;
    for i in 0..N {
        let metadata = json!({
            "client_name": format!("flood {i}"),
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
        });
        let response = meter
            .send(oauth::register::request(&endpoint, &metadata))
            .await?;
        if response.status >= 400 && first_refusal.is_none() {
            first_refusal = Some((i + 1, describe(&response)));
        }
        if let Some(id) = response.json()["client_id"].as_str() {
            clients.insert(id.to_owned());
        }
        *statuses.entry(response.status).or_default() += 1;
    }
    let statuses = statuses
        .iter()
        .map(|(status, n)| format!("{n}× {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    let limited = match &first_refusal {
        Some((at, refusal)) => format!("the AS refused from request {at} on ({refusal})"),
        None => "no request refused".to_owned(),
    };
    let evidence = format!(
        "{N} unauthenticated RFC 7591 registrations at node-oidc-provider: {statuses}; {limited}; \
         {} distinct client IDs handed out, each a client the AS keeps (its in-memory store is \
         not observable from outside).",
        clients.len()
    );
    Ok(if first_refusal.is_some() || clients.is_empty() {
        Observed::blocked(evidence)
    } else {
        Observed::succeeded(evidence)
    })
}

/// What each table gained between two readings (tables that grew only).
fn growth(
    before: &BTreeMap<String, Size>,
    after: &BTreeMap<String, Size>,
) -> BTreeMap<String, Size> {
    after
        .iter()
        .filter_map(|(table, now)| {
            let was = before.get(table).copied().unwrap_or_default();
            let grown = Size {
                records: now.records.saturating_sub(was.records),
                bytes: now.bytes.saturating_sub(was.bytes),
            };
            (grown.records > 0 || grown.bytes > 0).then(|| (table.clone(), grown))
        })
        .collect()
}

/// Client metadata documents the servers fetched between two snapshots.
fn fetches(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> u64 {
    let kind = "client_metadata_document";
    let count = |m: &BTreeMap<String, u64>| m.get(kind).copied().unwrap_or(0);
    count(after).saturating_sub(count(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_keeps_the_tables_that_grew() {
        let size = |records, bytes| Size { records, bytes };
        let before = BTreeMap::from([
            ("grants".to_owned(), size(1, 10)),
            ("tokens".to_owned(), size(2, 20)),
        ]);
        let after = BTreeMap::from([
            ("grants".to_owned(), size(3, 50)),
            ("tokens".to_owned(), size(2, 20)),
            ("interactions".to_owned(), size(1, 5)),
        ]);
        let grown = growth(&before, &after);
        assert_eq!(grown.len(), 2);
        assert_eq!(grown["grants"], size(2, 40));
        assert_eq!(grown["interactions"], size(1, 5));
    }
}
