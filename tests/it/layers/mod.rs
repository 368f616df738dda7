//! The crate's layers import only downward, and no modules import each
//! other in a circle. ARCHITECTURE.md draws the same map.

mod cycles;
mod imports;

use imports::{Edge, ModPath, Source};

use crate::support::paths::root;

/// The layers of `src/`, bottom first. A top-level module may import only
/// modules of a lower layer: never one above, never one beside it (`authz`
/// and `gateway` are services that know nothing of each other).
const LAYERS: &[&[&str]] = &[
    // Leaves: time, randomness and the one outbound HTTP client, which the
    // layers above take as parameters or build once.
    &["clock", "random", "http_client"],
    // Wire formats, signatures, GNAP/OAuth/MCP messages: sans I/O.
    &["proto"],
    // Storage behind one trait; the agent library beside it.
    &["store", "client"],
    // Upstream servers, credential sets, sealing, the OAuth client logic.
    &["upstream"],
    // The services.
    &["authz", "gateway"],
    // Routing and rendering.
    &["http"],
    // What a running server is assembled from.
    &["config", "admin"],
    // `gnapd compare`: runs gnapd instances and measures them from outside
    // (it reads the admin socket, so it sits above it); `gnapd conformance`
    // beside it checks any GNAP AS from outside.
    &["compare", "conformance"],
    // Entry points: the command line, and the fuzz harness.
    &["cli", "fuzzing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every import that goes up or sideways, and every top-level module the
/// table does not place, as readable lines.
fn layer_violations(edges: &[Edge], sources: &[Source]) -> Vec<String> {
    let mut problems = Vec::new();
    for source in sources {
        if let Some(top) = source.module.first()
            && layer_of(top).is_none()
        {
            problems.push(format!(
                "{}: module `{top}` has no layer in LAYERS",
                source.file
            ));
        }
    }
    for edge in edges {
        let (Some(from), Some(to)) = (edge.from.first(), edge.to.first()) else {
            continue; // the crate root declares everything
        };
        if from == to {
            continue;
        }
        if let (Some(a), Some(b)) = (layer_of(from), layer_of(to))
            && b >= a
        {
            problems.push(format!(
                "{}:{}: `{}` imports `{}`, which is {} it",
                edge.file,
                edge.line,
                edge.from.join("::"),
                edge.to.join("::"),
                if b == a { "beside" } else { "above" },
            ));
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

fn circle_report(edges: &[Edge]) -> Vec<String> {
    cycles::circles(edges)
        .into_iter()
        .map(|(members, place)| {
            let names: Vec<String> = members.iter().map(|m| m.join("::")).collect();
            format!("{} (one step at {place})", names.join(" <-> "))
        })
        .collect()
}

fn crate_sources() -> Vec<Source> {
    imports::read_tree(&root().join("src"))
}

#[test]
fn no_module_imports_one_above_or_beside_its_own_layer() {
    let sources = crate_sources();
    let edges = imports::edges(&sources).unwrap();
    let problems = layer_violations(&edges, &sources);
    assert!(
        problems.is_empty(),
        "imports against the layer order:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let edges = imports::edges(&crate_sources()).unwrap();
    let circles = circle_report(&edges);
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// A small made-up crate, to prove the checks see what they must.
fn made_up(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| {
            let module: ModPath = path
                .trim_end_matches(".rs")
                .split('/')
                .filter(|p| !matches!(*p, "mod" | "lib"))
                .map(str::to_owned)
                .collect();
            Source {
                module,
                file: (*path).to_owned(),
                text: (*text).to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_layer_check_reports_an_import_going_up_and_one_going_sideways() {
    let sources = made_up(&[
        (
            "lib.rs",
            "pub mod proto; pub mod store; pub mod authz; pub mod gateway;",
        ),
        ("proto/mod.rs", "use crate::store::Store;"),
        ("store/mod.rs", "pub struct Store;"),
        (
            "authz/mod.rs",
            "fn f() { let _ = crate::gateway::forward(); }",
        ),
        ("gateway/mod.rs", "pub fn forward() {}"),
    ]);
    let edges = imports::edges(&sources).unwrap();
    let problems = layer_violations(&edges, &sources);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("`authz` imports `gateway`, which is beside it"));
    assert!(problems[1].contains("`proto` imports `store`, which is above it"));
}

#[test]
fn the_layer_check_reports_a_module_with_no_layer() {
    let sources = made_up(&[("lib.rs", "pub mod extra;"), ("extra.rs", "")]);
    let edges = imports::edges(&sources).unwrap();
    let problems = layer_violations(&edges, &sources);
    assert_eq!(
        problems,
        ["extra.rs: module `extra` has no layer in LAYERS"]
    );
}

#[test]
fn the_circle_check_reports_siblings_that_import_each_other_through_super_and_macros() {
    let sources = made_up(&[
        ("gateway/mod.rs", "mod forward; mod stdio; mod sse;"),
        (
            "gateway/forward.rs",
            "use super::stdio::Bridge; pub struct Forwarded;",
        ),
        (
            "gateway/stdio.rs",
            "fn f() -> bool { matches!(x(), super::sse::Event) }",
        ),
        (
            "gateway/sse.rs",
            "fn g() { let _ = super::forward::Forwarded; }",
        ),
    ]);
    let circles = circle_report(&imports::edges(&sources).unwrap());
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(circles[0].starts_with("gateway::forward <-> gateway::sse <-> gateway::stdio"));
}

#[test]
fn a_parent_and_its_children_and_words_in_comments_make_no_circle_and_no_violation() {
    let sources = made_up(&[
        ("lib.rs", "pub mod proto; pub mod http;"),
        (
            "proto/mod.rs",
            "//! Rendered by `crate::http`.\n/// See crate::http::serve.\npub mod wire; pub use wire::Frame;",
        ),
        ("proto/wire.rs", "use super::Frame as _; pub struct Frame;"),
        ("http/mod.rs", "use crate::proto::Frame;"),
    ]);
    let edges = imports::edges(&sources).unwrap();
    assert!(layer_violations(&edges, &sources).is_empty());
    assert!(circle_report(&edges).is_empty());
}
