//! Accounts in PostgreSQL (`[auth] users = "postgres"`, the default for `type = "postgres"`): a
//! table `<table>_users` beside the sessions, shared by every server on that database. An insert
//! that finds the id taken does nothing (`ON CONFLICT DO NOTHING`), a re-hash lands only while
//! the hash is still the one the login checked, and the highest bcrypt cost in use is one lookup
//! in an index on the hashes' cost.
//!
//! The table is created at the first call that reaches the database, so that a server starts
//! while the database is down.

use crate::users::{NewUser, Row, UserStorage};
use crate::users::UserError;
use super::connection::{Postgres, Schema};

/// Accounts in one PostgreSQL database.
pub struct PostgresUsers {
    db: Postgres,
    schema: Schema,
    sql: Sql,
}

struct Sql {
    find: String,
    insert: String,
    replace_hash: String,
    highest_cost: String,
    list: String,
    remove: String,
}

impl PostgresUsers {
    /// Accounts in `<table>_users`.
    pub fn new(db: Postgres, table: &str) -> Self {
        let t = format!("{table}_users");
        // The cost is the two digits after `$2b$`: the index makes `max` one index lookup.
        let cost = "substr(password_hash, 5, 2)";
        Self {
            db,
            schema: Schema::new(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n    \
                     key text PRIMARY KEY,\n    \
                     id text NOT NULL,\n    \
                     name text NOT NULL,\n    \
                     password_hash text NOT NULL,\n    \
                     created_at text NOT NULL\n);\n\
                     CREATE INDEX IF NOT EXISTS {t}_cost ON {t} (({cost}));"
            )),
            sql: Sql {
                find: format!("SELECT id, name, password_hash FROM {t} WHERE key = $1"),
                insert: format!(
                    "INSERT INTO {t} (key, id, name, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING"
                ),
                replace_hash: format!(
                    "UPDATE {t} SET password_hash = $3 WHERE key = $1 AND password_hash = $2"
                ),
                highest_cost: format!(
                    "SELECT max({cost}) FROM {t} WHERE {cost} BETWEEN '04' AND '31'"
                ),
                list: format!(
                    "SELECT key, id, name, password_hash, created_at FROM {t} ORDER BY key"
                ),
                remove: format!("DELETE FROM {t} WHERE key = $1"),
            },
        }
    }

    fn ready(&self) -> Result<(), UserError> {
        Ok(self.schema.ensure_blocking(&self.db)?)
    }

    fn insert_one(&self, user: &NewUser) -> Result<bool, UserError> {
        self.ready()?;
        let sql = self.sql.insert.clone();
        let (key, row, created) = (user.key.clone(), user.row.clone(), user.created_at.clone());
        let added = self.db.run_blocking(move |c| async move {
            c.execute(
                sql.as_str(),
                &[&key, &row.id, &row.name, &row.password_hash, &created],
            )
            .await
        })?;
        Ok(added == 1)
    }
}

impl UserStorage for PostgresUsers {
    fn find(&self, key: &str) -> Result<Option<Row>, UserError> {
        self.ready()?;
        let (sql, key) = (self.sql.find.clone(), key.to_owned());
        Ok(self.db.run_blocking(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            Ok(c.query_opt(&stmt, &[&key]).await?.map(|r| Row {
                id: r.get(0),
                name: r.get(1),
                password_hash: r.get(2),
            }))
        })?)
    }

    fn insert(&self, user: &NewUser) -> Result<bool, UserError> {
        self.insert_one(user)
    }


    fn replace_hash(&self, key: &str, old: &str, new: &str) -> Result<bool, UserError> {
        self.ready()?;
        let sql = self.sql.replace_hash.clone();
        let (key, old, new) = (key.to_owned(), old.to_owned(), new.to_owned());
        let changed = self.db.run_blocking(move |c| async move {
            c.execute(sql.as_str(), &[&key, &old, &new]).await
        })?;
        Ok(changed == 1)
    }

    fn list(&self) -> Result<Vec<(String, Row, String)>, UserError> {
        self.ready()?;
        let sql = self.sql.list.clone();
        Ok(self.db.run_blocking(move |c| async move {
            let rows = c.query(sql.as_str(), &[]).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let row = Row {
                        id: r.get(1),
                        name: r.get(2),
                        password_hash: r.get(3),
                    };
                    (r.get(0), row, r.get(4))
                })
                .collect())
        })?)
    }

    fn remove(&self, key: &str) -> Result<bool, UserError> {
        self.ready()?;
        let (sql, key) = (self.sql.remove.clone(), key.to_owned());
        let removed = self
            .db
            .run_blocking(move |c| async move { c.execute(sql.as_str(), &[&key]).await })?;
        Ok(removed == 1)
    }

    fn highest_cost(&self) -> Result<Option<u32>, UserError> {
        self.ready()?;
        let sql = self.sql.highest_cost.clone();
        let highest: Option<String> = self.db.run_blocking(move |c| async move {
            let stmt = c.prepare_cached(&sql).await?;
            Ok(c.query_one(&stmt, &[]).await?.get(0))
        })?;
        Ok(highest.and_then(|digits| digits.parse().ok()))
    }
}

impl crate::users::UserDb {
    /// Accounts in the PostgreSQL table `<table>_users`; `legacy` is imported into it as into a
    /// file.
    pub fn open_postgres(
        db: Postgres,
        table: &str,
        legacy: Option<&std::path::Path>,
        cost: u32,
    ) -> Result<Self, UserError> {
        Self::over(Box::new(PostgresUsers::new(db, table)), legacy, cost)
    }
}
