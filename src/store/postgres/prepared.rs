//! Each connection prepares a statement once and runs it by name after.
//!
//! The driver's `query(&str, …)` prepares the text on every call: a round
//! trip to parse and plan it before the one that runs it. Measured on this
//! machine, a lookup by key took ~450 µs so and ~100 µs prepared
//! (spec-notes/store.md). So every statement the store runs is a
//! `&'static str`, prepared on its connection at first use and kept by its
//! text; a connection opened again starts with none.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement, Transaction};

/// A connection's prepared statements, by their text.
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

/// Parameters of a statement.
pub(super) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// A connection with its prepared statements (what a job is given).
pub(super) struct Conn {
    pub client: Client,
    statements: Statements,
}

/// A client or a transaction, with its connection's prepared statements.
pub(super) struct Db<'a, C> {
    client: &'a mut C,
    statements: &'a mut Statements,
}

impl Conn {
    pub(super) fn new(client: Client) -> Self {
        Self {
            client,
            statements: Statements::default(),
        }
    }

    /// Statements outside a transaction (each its own).
    pub(super) fn db(&mut self) -> Db<'_, Client> {
        Db {
            client: &mut self.client,
            statements: &mut self.statements,
        }
    }

    /// A transaction, and the prepared statements to run in it.
    pub(super) fn begin(&mut self) -> Result<(Transaction<'_>, &mut Statements), postgres::Error> {
        let tx = self.client.transaction()?;
        Ok((tx, &mut self.statements))
    }
}

impl<'a, C: GenericClient> Db<'a, C> {
    /// `client` with `statements`.
    pub(super) fn on(client: &'a mut C, statements: &'a mut Statements) -> Self {
        Self { client, statements }
    }

    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.0.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.execute(&statement, params)
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.query(&statement, params)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.query_opt(&statement, params)
    }

    pub(super) fn query_one(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Row, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.query_one(&statement, params)
    }
}
