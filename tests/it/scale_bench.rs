//! The scale bench (`benches/scale`, issue 19) run small against the debug
//! gnapd: every figure it promises is in its JSON, non-zero and plausible.
//! Its logic is included here as the bench binary includes it, so the test
//! runs the same code the bench does. No figure is held to a goal: timing
//! on a debug build says nothing.

use serde_json::Value;

use crate::support::process::GNAPD;

#[allow(dead_code)]
#[path = "../../benches/scale/bench.rs"]
mod bench;

fn run(args: &[&str], json: &std::path::Path) -> Value {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--gnapd".into(), GNAPD.into(), "--json".into()]);
    all.push(json.display().to_string());
    assert_eq!(bench::main_with_args(all), 0, "the bench failed");
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

fn positive(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for part in path.split('.') {
        at = &at[part];
    }
    let n = at
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {at}"));
    assert!(n > 0.0 && n.is_finite(), "{path} = {n}");
    n
}

fn memory_is_plausible(m: &Value, what: &str) {
    let rss = positive(m, "rss");
    let anon = positive(m, "anon");
    assert!(anon <= rss && rss <= positive(m, "peak"), "{what}: {m}");
}

#[test]
fn the_scale_bench_reports_every_figure_against_a_debug_gnapd() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let json = dir.path().join("scale.json");
    let v = run(
        &[
            "--tokens",
            "2000",
            "--duration",
            "1",
            "--sample",
            "100",
            "--data-root",
            &root,
        ],
        &json,
    );
    for side in ["baseline", "restart"] {
        let calls = &v[side]["gateway"];
        positive(calls, "calls");
        positive(calls, "calls_per_sec");
        positive(calls, "server_cpu_us_per_call");
        positive(calls, "generator_cpu_us_per_call");
        positive(calls, "p50_ms");
        assert_eq!(calls["failed"], 0, "{side}: {calls}");
        assert!(positive(calls, "server_cpu_us_per_call") < 1e6);
        memory_is_plausible(&calls["memory_start"], side);
        memory_is_plausible(&calls["memory_end"], side);
        assert!(positive(calls, "rss_peak") >= positive(calls, "anon_peak"));
        let flows = &v[side]["first_token"];
        positive(flows, "flows");
        positive(flows, "flows_per_sec");
        positive(flows, "server_cpu_us_per_flow");
        assert!(positive(flows, "p99_ms") >= positive(flows, "p50_ms"));
        assert_eq!(flows["errors"], 0, "{side}: {flows}");
    }
    assert_eq!(v["baseline"]["gateway"]["tokens"], 1);
    memory_is_plausible(&v["baseline"]["memory"], "baseline");

    let load = &v["load"];
    assert_eq!(load["grants"], 2000);
    assert_eq!(load["errors"], 0);
    positive(load, "grants_per_sec");
    positive(load, "server_cpu_us_per_flow");
    positive(load, "last_window.flows");
    positive(load, "last_window.server_cpu_us_per_flow");
    memory_is_plausible(&load["memory_end"], "load");
    assert!(!load["progress"].as_array().unwrap().is_empty());
    let kept = load["kept"].as_u64().unwrap();
    assert!((90..=110).contains(&kept), "kept {kept} of a 100 sample");
    assert_eq!(v["restart"]["gateway"]["tokens"], kept);

    let disk = &v["disk"];
    let grants = positive(disk, "grants_in_store");
    assert!(grants > 2000.0, "{grants}: the load and the baseline");
    let bytes = positive(disk, "bytes");
    positive(disk, "allocated");
    assert!((positive(disk, "bytes_per_grant") - bytes / grants).abs() < 1e-6);
    let files = disk["files"].as_array().unwrap();
    let sum: u64 = files.iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum as f64, bytes);
    assert!(
        disk["stop"]["exit"]
            .as_str()
            .unwrap()
            .contains("exit status: 0")
    );

    positive(&v["full_store"], "flows");
    assert_eq!(v["full_store"]["errors"], 0);

    let restart = &v["restart"];
    positive(restart, "startup.to_listening_line_ms");
    positive(restart, "startup.to_first_answer_ms");
    memory_is_plausible(&restart["memory_at_first_answer"], "restart");
    memory_is_plausible(&restart["memory_after_1s"], "restart + 1 s");
    memory_is_plausible(&restart["memory_end"], "restart end");
    // The kept tokens' first calls, in four growing steps ending with all.
    let steps = restart["memory_by_tokens_used"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{steps:?}");
    let used: Vec<u64> = steps.iter().map(|s| s[0].as_u64().unwrap()).collect();
    assert!(used.windows(2).all(|w| w[0] < w[1]), "{used:?}");
    assert_eq!(used.last().copied(), Some(kept));
    for step in steps {
        memory_is_plausible(&step[1], "a step of first calls");
    }
    for ratio in [
        "gateway_cpu_per_call_restart_vs_baseline",
        "first_token_cpu_restart_vs_baseline",
        "first_token_cpu_end_of_load_vs_baseline",
        "first_token_cpu_full_store_vs_baseline",
    ] {
        positive(&v["ratios"], ratio);
    }
    // The store's own account, beside the disk's: a record per grant.
    let records = v["store_tables"]["grants"]["records"].as_f64().unwrap();
    assert_eq!(records, grants);
}

#[test]
fn the_scale_bench_sweep_mode_sees_lapsed_tokens_leave_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let json = dir.path().join("sweep.json");
    let v = run(
        &[
            "--sweep",
            "--rate",
            "20",
            "--lifetime",
            "2",
            "--sweep-interval",
            "1",
            "--run-for",
            "7",
            "--every",
            "1",
            "--concurrency",
            "4",
            "--data-root",
            &root,
        ],
        &json,
    );
    assert_eq!(v["errors"], 0);
    let flows = positive(&v, "flows");
    let samples = v["samples"].as_array().unwrap();
    assert!(samples.len() >= 6, "{} samples", samples.len());
    for s in samples {
        memory_is_plausible(&s["memory"], "sample");
    }
    let steady = &v["steady"];
    positive(steady, "data_bytes.median");
    positive(steady, "rss.median");
    // Grants and their tokens live 2 s and the sweeper runs every second: by
    // the end, the early agents' grants are gone (with the default minute, none would be).
    let last = samples.last().unwrap();
    let grants = last["grants"].as_f64().unwrap();
    assert!(
        grants < flows,
        "{grants} grants (one token each) in the store after {flows} flows"
    );
}

#[test]
fn the_cluster_mode_measures_sled_and_one_and_two_postgres_nodes_without_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let json = dir.path().join("cluster.json");
    let v = run(
        &[
            "--cluster",
            "--nodes",
            "2",
            "--runs",
            "1",
            "--duration",
            "1",
            "--concurrency",
            "4",
            "--data-root",
            &root,
        ],
        &json,
    );
    let rows = v.as_array().expect("a row per setup and run");
    let setups: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["store"].as_str().unwrap(), r["nodes"].as_u64().unwrap()))
        .collect();
    assert_eq!(setups.len(), 3, "{setups:?}");
    for wanted in [("sled", 1), ("postgres", 1), ("postgres", 2)] {
        assert!(setups.contains(&wanted), "{wanted:?} missing: {setups:?}");
    }
    // The database's CPU is read in 10 ms ticks: one short window of a
    // debug build may see none, all of PostgreSQL's windows together do.
    let mut database_total = 0.0;
    for row in rows {
        let what = format!("{} run {}", row["setup"], row["run"]);
        assert_eq!(row["flows"]["errors"], 0, "{what}: {}", row["flows"]);
        assert_eq!(row["calls"]["failed"], 0, "{what}: {}", row["calls"]);
        positive(&row["flows"], "flows_per_sec");
        positive(&row["flows"], "server_cpu_us_per_flow");
        positive(&row["calls"], "calls_per_sec");
        positive(&row["calls"], "server_cpu_us_per_call");
        // The database's processes do work only when it is the store.
        let database = row["flows"]["database_cpu_us_per_flow"].as_f64().unwrap()
            + row["calls"]["database_cpu_us_per_call"].as_f64().unwrap();
        if row["store"] == "sled" {
            assert_eq!(database, 0.0, "{what}");
        } else {
            database_total += database;
        }
    }
    assert!(
        database_total > 0.0,
        "the database's CPU went uncounted in every PostgreSQL window"
    );
}
