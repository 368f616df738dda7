//! The per-step recorder a driver runs a scenario through: it marks step
//! boundaries, reads the probes at each, and turns what the meters tapped
//! and the probes read into one [`StepSample`] per step.
//!
//! ```text
//! rec.step("register").await?;   // opens "register"
//! …exchanges…
//! rec.step("token").await?;      // closes "register", opens "token"
//! …
//! rec.pause().await?;            // closes "token"; what follows is setup
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use super::meter::{Tally, Tap};
use super::probe::{Probes, Snapshot};

/// What one step of one run cost.
#[derive(Debug, Clone, Default)]
pub struct StepSample {
    /// The step's name.
    pub name: String,
    /// Wall time.
    pub wall: Duration,
    /// Exchanges and person actions tapped.
    pub tally: TallyCounts,
    /// Server CPU, nanoseconds.
    pub server_cpu_ns: u64,
    /// Client CPU, nanoseconds.
    pub client_cpu_ns: u64,
    /// Server crypto operations during the step.
    pub server_crypto: BTreeMap<String, u64>,
    /// Client crypto operations during the step.
    pub client_crypto: BTreeMap<String, u64>,
    /// Records added (negative: removed) per table.
    pub state_records: BTreeMap<String, i64>,
    /// Bytes added (negative: freed), all tables.
    pub state_bytes: i64,
    /// Server-made requests by kind.
    pub outbound: BTreeMap<String, u64>,
}

/// A step's exchanges summed, and what the URLs exposed.
#[derive(Debug, Clone, Default)]
pub struct TallyCounts {
    /// Requests the client (agent or browser) sent.
    pub round_trips: u32,
    /// Of those, the ones the browser sent (front channel).
    pub front_channel_round_trips: u32,
    /// TCP connections opened.
    pub connections: u32,
    /// Request header bytes.
    pub request_headers: u64,
    /// Request body bytes.
    pub request_body: u64,
    /// Response header bytes.
    pub response_headers: u64,
    /// Response body bytes.
    pub response_body: u64,
    /// Person actions.
    pub person_interactions: u32,
    /// Browser redirects followed.
    pub browser_redirects: u32,
    /// Query parameter names seen in URLs, with the channel.
    pub url_exposure: BTreeMap<String, String>,
    /// Statuses in order (for failures and evidence).
    pub statuses: Vec<u16>,
}

impl From<Tally> for TallyCounts {
    fn from(tally: Tally) -> Self {
        let mut counts = Self {
            person_interactions: tally.person_interactions,
            browser_redirects: tally.browser_redirects,
            ..Self::default()
        };
        for exchange in tally.exchanges {
            counts.round_trips += 1;
            counts.connections += u32::from(exchange.connected);
            counts.request_headers += exchange.request_headers;
            counts.request_body += exchange.request_body;
            counts.response_headers += exchange.response_headers;
            counts.response_body += exchange.response_body;
            counts.statuses.push(exchange.status);
            let channel = match exchange.channel {
                super::meter::Channel::Front => {
                    counts.front_channel_round_trips += 1;
                    "front-channel"
                }
                super::meter::Channel::Back => "back-channel",
            };
            counts.expose(&exchange.url, channel);
        }
        for location in &tally.redirect_locations {
            counts.expose(location, "front-channel");
        }
        counts
    }
}

impl TallyCounts {
    /// Records the query parameter names of `url` as seen on `channel`
    /// ("both" once seen on each).
    fn expose(&mut self, url: &str, channel: &str) {
        let Some((_, query)) = url.split_once('?') else {
            return;
        };
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            let seen = self
                .url_exposure
                .entry(name.into_owned())
                .or_insert_with(|| channel.to_owned());
            if seen != channel {
                *seen = "both".to_owned();
            }
        }
    }
}

/// Why a run could not be measured.
#[derive(Debug, thiserror::Error)]
#[error("measuring: {0}")]
pub struct ProbeError(pub String);

/// Records the steps of one run of one scenario.
#[derive(Debug)]
pub struct Recorder<'p> {
    tap: Tap,
    probes: &'p mut Probes,
    open: Option<(String, Snapshot)>,
    steps: Vec<StepSample>,
}

impl<'p> Recorder<'p> {
    /// A recorder draining `tap` and reading `probes`.
    pub fn new(tap: &Tap, probes: &'p mut Probes) -> Self {
        Self {
            tap: tap.clone(),
            probes,
            open: None,
            steps: Vec::new(),
        }
    }

    /// Closes the open step, if any, and opens `name`. What was tapped
    /// while no step was open (setup) is dropped.
    pub async fn step(&mut self, name: &str) -> Result<(), ProbeError> {
        self.pause().await?;
        self.tap.drain();
        let start = self.probes.start().await.map_err(ProbeError)?;
        self.open = Some((name.to_owned(), start));
        Ok(())
    }

    /// Closes the open step, if any: what follows is not measured.
    pub async fn pause(&mut self) -> Result<(), ProbeError> {
        let Some((name, start)) = self.open.take() else {
            return Ok(());
        };
        let end = self.probes.end().await.map_err(ProbeError)?;
        let tally = self.tap.drain();
        self.steps.push(sample(name, &start, &end, tally));
        Ok(())
    }

    /// Closes the open step and gives every step recorded.
    pub async fn finish(mut self) -> Result<Vec<StepSample>, ProbeError> {
        self.pause().await?;
        Ok(self.steps)
    }
}

fn sample(name: String, start: &Snapshot, end: &Snapshot, tally: Tally) -> StepSample {
    let mut state_records = BTreeMap::new();
    let mut state_bytes = 0i64;
    for (table, after) in &end.state {
        let before = start.state.get(table).copied().unwrap_or_default();
        let added = after.records as i64 - before.records as i64;
        if added != 0 {
            state_records.insert(table.clone(), added);
        }
        state_bytes += after.bytes as i64 - before.bytes as i64;
    }
    StepSample {
        name,
        wall: end.at.saturating_duration_since(start.at),
        tally: tally.into(),
        server_cpu_ns: end.server_cpu_ns.saturating_sub(start.server_cpu_ns),
        client_cpu_ns: end.client_cpu_ns.saturating_sub(start.client_cpu_ns),
        server_crypto: delta(&start.server_crypto, &end.server_crypto),
        client_crypto: delta(&start.client_crypto, &end.client_crypto),
        state_records,
        state_bytes,
        outbound: delta(&start.outbound, &end.outbound),
    }
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(kind, n)| {
            let d = n.saturating_sub(before.get(kind).copied().unwrap_or(0));
            (d > 0).then(|| (kind.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::TallyCounts;
    use crate::compare::meter::{Channel, Exchange, Tally};

    fn exchange(url: &str, channel: Channel) -> Exchange {
        Exchange {
            method: "GET".to_owned(),
            url: url.to_owned(),
            status: 302,
            channel,
            request_headers: 1,
            request_body: 0,
            response_headers: 1,
            response_body: 0,
            elapsed: Duration::from_millis(1),
            connected: false,
        }
    }

    /// The callback the browser is redirected to is never fetched, yet its
    /// code (or interact_ref and hash) crossed the front channel in a URL.
    #[test]
    fn an_unfetched_callback_still_exposes_its_parameters_on_the_front_channel() {
        let tally = Tally {
            exchanges: vec![
                exchange("http://as/authorize?client_id=c&state=s", Channel::Front),
                exchange("http://as/token?state=x", Channel::Back),
            ],
            person_interactions: 1,
            browser_redirects: 1,
            redirect_locations: vec![
                "http://client/cb?code=secret&state=s&iss=http%3A%2F%2Fas#frag".to_owned(),
            ],
        };
        let counts = TallyCounts::from(tally);
        let exposed = |name: &str| counts.url_exposure.get(name).map(String::as_str);
        assert_eq!(exposed("code"), Some("front-channel"));
        assert_eq!(exposed("iss"), Some("front-channel"));
        assert_eq!(exposed("client_id"), Some("front-channel"));
        assert_eq!(exposed("state"), Some("both"));
        assert_eq!(exposed("frag"), None);
        assert_eq!(counts.browser_redirects, 1);
        assert_eq!(counts.round_trips, 2);
    }
}
