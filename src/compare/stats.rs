//! From samples to the report's numbers: steps of the same name are
//! pooled across runs (and across the calls of the steady state), counts
//! become means per sample, wall times become percentiles.

use std::collections::BTreeMap;

use super::recorder::StepSample;
use super::report::{Bytes, Cpu, Crypto, Percentiles, State, StepReport};

/// The steps of a scenario, pooled by name in the order they first
/// appear, and the whole scenario per run (`runs`: each run's steps).
pub fn steps(runs: &[Vec<StepSample>]) -> (Vec<StepReport>, Option<StepReport>) {
    let mut order: Vec<&str> = Vec::new();
    let mut pooled: BTreeMap<&str, Vec<&StepSample>> = BTreeMap::new();
    for run in runs {
        for sample in run {
            if !pooled.contains_key(sample.name.as_str()) {
                order.push(&sample.name);
            }
            pooled.entry(&sample.name).or_default().push(sample);
        }
    }
    let steps = order
        .iter()
        .filter_map(|name| pooled.get(name).map(|samples| summarize(name, samples)))
        .collect();
    let totals: Vec<StepSample> = runs
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| sum(r))
        .collect();
    let total =
        (!totals.is_empty()).then(|| summarize("total", &totals.iter().collect::<Vec<_>>()));
    (steps, total)
}

/// One sample that is every step of a run added up.
fn sum(run: &[StepSample]) -> StepSample {
    let mut total = StepSample {
        name: "total".to_owned(),
        ..StepSample::default()
    };
    for step in run {
        total.wall += step.wall;
        total.server_cpu_ns += step.server_cpu_ns;
        total.client_cpu_ns += step.client_cpu_ns;
        add_counts(&mut total.server_crypto, &step.server_crypto);
        add_counts(&mut total.client_crypto, &step.client_crypto);
        add_counts(&mut total.outbound, &step.outbound);
        for (table, n) in &step.state_records {
            *total.state_records.entry(table.clone()).or_insert(0) += n;
        }
        total.state_bytes += step.state_bytes;
        let (t, s) = (&mut total.tally, &step.tally);
        t.round_trips += s.round_trips;
        t.front_channel_round_trips += s.front_channel_round_trips;
        t.connections += s.connections;
        t.request_headers += s.request_headers;
        t.request_body += s.request_body;
        t.response_headers += s.response_headers;
        t.response_body += s.response_body;
        t.person_interactions += s.person_interactions;
        t.browser_redirects += s.browser_redirects;
        t.statuses.extend_from_slice(&s.statuses);
        for (name, channel) in &s.url_exposure {
            merge_exposure(&mut t.url_exposure, name, channel);
        }
    }
    total
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (kind, n) in from {
        *into.entry(kind.clone()).or_insert(0) += n;
    }
}

fn merge_exposure(into: &mut BTreeMap<String, String>, name: &str, channel: &str) {
    let seen = into
        .entry(name.to_owned())
        .or_insert_with(|| channel.to_owned());
    if seen != channel {
        *seen = "both".to_owned();
    }
}

fn summarize(name: &str, samples: &[&StepSample]) -> StepReport {
    let n = samples.len().max(1) as f64;
    let mean = |f: &dyn Fn(&StepSample) -> f64| samples.iter().map(|s| f(s)).sum::<f64>() / n;
    let mean_map = |f: &dyn Fn(&StepSample) -> BTreeMap<String, f64>| {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for sample in samples {
            for (kind, v) in f(sample) {
                *sums.entry(kind).or_insert(0.0) += v;
            }
        }
        sums.into_iter()
            .map(|(k, v)| (k, v / n))
            .collect::<BTreeMap<_, _>>()
    };
    let as_f64 =
        |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
    let mut url_exposure = BTreeMap::new();
    for sample in samples {
        for (param, channel) in &sample.tally.url_exposure {
            merge_exposure(&mut url_exposure, param, channel);
        }
    }
    StepReport {
        name: name.to_owned(),
        samples: samples.len() as u32,
        round_trips: mean(&|s| f64::from(s.tally.round_trips)),
        connections: mean(&|s| f64::from(s.tally.connections)),
        front_channel_round_trips: mean(&|s| f64::from(s.tally.front_channel_round_trips)),
        server_outbound: mean_map(&|s| as_f64(&s.outbound)),
        bytes: Bytes {
            request_headers: mean(&|s| s.tally.request_headers as f64),
            request_body: mean(&|s| s.tally.request_body as f64),
            response_headers: mean(&|s| s.tally.response_headers as f64),
            response_body: mean(&|s| s.tally.response_body as f64),
        },
        latency_ms: percentiles(samples.iter().map(|s| s.wall.as_secs_f64() * 1e3).collect()),
        cpu_us: Cpu {
            server: mean(&|s| s.server_cpu_ns as f64 / 1e3),
            client: mean(&|s| s.client_cpu_ns as f64 / 1e3),
        },
        crypto: Crypto {
            server: mean_map(&|s| as_f64(&s.server_crypto)),
            client: mean_map(&|s| as_f64(&s.client_crypto)),
        },
        state: State {
            records: mean_map(&|s| {
                s.state_records
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as f64))
                    .collect()
            }),
            bytes: mean(&|s| s.state_bytes as f64),
        },
        person_interactions: mean(&|s| f64::from(s.tally.person_interactions)),
        browser_redirects: mean(&|s| f64::from(s.tally.browser_redirects)),
        url_exposure,
    }
}

/// Nearest-rank percentiles of `values` (all zero when there are none).
pub fn percentiles(mut values: Vec<f64>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * values.len() as f64).ceil() as usize;
        values[i.clamp(1, values.len()) - 1]
    };
    Percentiles {
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
        mean: values.iter().sum::<f64>() / values.len() as f64,
        min: values[0],
        max: values[values.len() - 1],
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::compare::recorder::TallyCounts;

    fn sample(name: &str, ms: u64, round_trips: u32) -> StepSample {
        StepSample {
            name: name.to_owned(),
            wall: Duration::from_millis(ms),
            tally: TallyCounts {
                round_trips,
                request_body: 100,
                ..TallyCounts::default()
            },
            server_crypto: BTreeMap::from([("verify:ed25519".to_owned(), 1)]),
            ..StepSample::default()
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!(
            (p.p50, p.p95, p.p99, p.min, p.max),
            (50.0, 95.0, 99.0, 1.0, 100.0)
        );
        assert_eq!(p.mean, 50.5);
        let one = percentiles(vec![7.0]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert_eq!(percentiles(Vec::new()).p50, 0.0);
    }

    #[test]
    fn steps_pool_by_name_in_first_seen_order_and_totals_add_each_run() {
        let runs = vec![
            vec![
                sample("grant", 4, 1),
                sample("tools/call", 2, 1),
                sample("tools/call", 4, 1),
            ],
            vec![
                sample("grant", 6, 1),
                sample("tools/call", 6, 1),
                sample("tools/call", 8, 1),
            ],
        ];
        let (steps, total) = steps(&runs);
        assert_eq!(
            steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["grant", "tools/call"]
        );
        assert_eq!(steps[1].samples, 4);
        assert_eq!(steps[1].latency_ms.mean, 5.0);
        assert_eq!(steps[0].crypto.server["verify:ed25519"], 1.0);
        let total = total.unwrap();
        assert_eq!(total.samples, 2);
        assert_eq!(total.round_trips, 3.0);
        assert_eq!(total.bytes.request_body, 300.0);
        assert_eq!(total.crypto.server["verify:ed25519"], 3.0);
        assert_eq!(total.latency_ms.min, 10.0);
        assert_eq!(total.latency_ms.max, 20.0);
    }
}
