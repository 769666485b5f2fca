//! What a [`RedisEngine`] does on every node rather than on one key: health (PING every
//! master of a Cluster, by address) and listing keys (`SCAN` on every master).

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Value};

use super::connection::{engine_error, Conn, RedisEngine};
use crate::store::StoreError;

impl RedisEngine {
    /// PING to the server, or to every master of a cluster, one by one by address: a master
    /// the connection could not reach is still a master whose sessions cannot be served (the
    /// crate's all-masters routing answers for the nodes it is connected to).
    pub async fn ping(&self) -> Result<(), StoreError> {
        if !self.is_cluster() {
            return self.query(&redis::cmd("PING")).await;
        }
        for (host, port) in self.masters().await?.into_iter().flatten() {
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            self.route(redis::cmd("PING"), route).await?;
        }
        Ok(())
    }

    /// Every key matching `pattern` (a `SCAN MATCH` glob), on the server or on every master of
    /// a cluster. Each node is scanned in steps, never blocked by a `KEYS`.
    pub async fn scan(&self, pattern: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys = Vec::new();
        for node in self.scan_nodes().await? {
            let mut cursor = 0u64;
            loop {
                let (next, batch) = self.scan_step(&node, cursor, pattern).await?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }

    /// The nodes a scan visits: the server (`None`), or every master of a cluster by address.
    pub async fn scan_nodes(&self) -> Result<Vec<Option<(String, u16)>>, StoreError> {
        if self.is_cluster() {
            self.masters().await
        } else {
            Ok(vec![None])
        }
    }

    /// One `SCAN` step on `node` from `cursor` (about a thousand keys): the next cursor (0 once
    /// the node is done) and the keys matching `pattern`.
    pub async fn scan_step(
        &self,
        node: &Option<(String, u16)>,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<Vec<u8>>), StoreError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        match node {
            None => self.query(&cmd).await,
            Some((host, port)) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = self.route(cmd, route).await?;
                FromRedisValue::from_redis_value(value).map_err(|e| engine_error(e.into()))
            }
        }
    }

    /// The address of every master of the cluster (`CLUSTER SLOTS`).
    async fn masters(&self) -> Result<Vec<Option<(String, u16)>>, StoreError> {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        let value = self
            .route(redis::cmd("CLUSTER").arg("SLOTS").clone(), route)
            .await?;
        // Each entry: [first slot, last slot, [host, port, id, ...], replicas...].
        let ranges: Vec<Vec<Value>> =
            FromRedisValue::from_redis_value(value).map_err(|e| engine_error(e.into()))?;
        let mut masters: Vec<Option<(String, u16)>> = Vec::new();
        for range in ranges {
            let Some(master) = range.into_iter().nth(2) else {
                continue;
            };
            let (host, port): (String, u16) = match master {
                Value::Array(fields) if fields.len() >= 2 => {
                    let mut fields = fields.into_iter();
                    let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
                        continue;
                    };
                    (
                        FromRedisValue::from_redis_value(host)
                            .map_err(|e| engine_error(e.into()))?,
                        FromRedisValue::from_redis_value(port)
                            .map_err(|e| engine_error(e.into()))?,
                    )
                }
                _ => continue,
            };
            let node = Some((host, port));
            if !masters.contains(&node) {
                masters.push(node);
            }
        }
        Ok(masters)
    }

    /// One command to the cluster node(s) `routing` names.
    async fn route(&self, cmd: Cmd, routing: RoutingInfo) -> Result<Value, StoreError> {
        self.run(|conn| {
            let (cmd, routing) = (cmd.clone(), routing.clone());
            async move {
                match conn {
                    Conn::Cluster(mut c) => c.route_command(cmd, routing).await,
                    Conn::Single(mut c) => cmd.query_async(&mut c).await,
                }
            }
        })
        .await
    }
}
