//! Every in-memory table of a running server that grows with requests, for
//! the admin command `store_stats` (`gnapd compare` reads it beside the
//! store's tables): the AS's, the gateway's, and those of the HTTP layer
//! (client connections, OAuth client documents, upstream sign-ins).

use super::App;
use crate::store::TableSize;

/// The tables, each named `memory:<what>`.
pub fn memory_tables(app: &App) -> Vec<(String, TableSize)> {
    let mut tables = app.auth.memory_tables();
    tables.extend(app.gateway.memory_tables());
    let mut more: Vec<(&str, TableSize)> =
        vec![("memory:client_connections", app.admission.size())];
    more.extend(app.oauth_clients.registry.memory_tables());
    more.extend(app.connections.sizes());
    tables.extend(more.into_iter().map(|(name, size)| (name.to_owned(), size)));
    tables
}
