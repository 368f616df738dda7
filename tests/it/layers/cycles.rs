//! Circles among sibling modules.
//!
//! Two modules that name each other, directly or around a longer loop,
//! cannot be understood or moved apart one at a time. A parent and its own
//! children are exempt: a `mod.rs` that re-exports its children's items and
//! children that use their parent's are one unit by design.

use std::collections::{BTreeMap, BTreeSet};

use super::imports::{Edge, ModPath};

/// Every circle, as the modules on it (siblings under one parent), each
/// with one place where the circle's first step is written.
pub fn circles(edges: &[Edge]) -> Vec<(Vec<ModPath>, String)> {
    // Lift each edge to the two siblings it connects: the children of the
    // deepest common ancestor on each side.
    let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for edge in edges {
        let common = edge
            .from
            .iter()
            .zip(&edge.to)
            .take_while(|(a, b)| a == b)
            .count();
        if common == edge.from.len() || common == edge.to.len() {
            continue; // one is the other's ancestor
        }
        let from = edge.from[..=common].to_vec();
        let to = edge.to[..=common].to_vec();
        graph
            .entry(from)
            .or_default()
            .entry(to)
            .or_insert_with(|| format!("{}:{}", edge.file, edge.line));
    }
    strongly_connected(&graph)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let first = &component[0];
            let place = graph[first]
                .iter()
                .find(|(to, _)| component.contains(to))
                .map(|(_, place)| place.clone())
                .unwrap_or_default();
            (component, place)
        })
        .collect()
}

/// Tarjan's algorithm, iteratively deep enough for a crate's module tree.
fn strongly_connected(graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<Vec<ModPath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeMap<ModPath, String>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        components: Vec<Vec<ModPath>>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g ModPath) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(next) = state.graph.get(node) {
            for to in next.keys() {
                if !state.index.contains_key(to) {
                    visit(state, to);
                    let low = state.low[to].min(state.low[node]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(to) {
                    let low = state.index[to].min(state.low[node]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.clone());
                if top == node {
                    break;
                }
            }
            component.sort();
            state.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    let nodes: BTreeSet<&ModPath> = graph
        .iter()
        .flat_map(|(from, to)| std::iter::once(from).chain(to.keys()))
        .collect();
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.components
}
