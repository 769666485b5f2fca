//! A Redis primary, two replicas and three Sentinels on loopback (Debian's `redis-server`, the
//! Sentinels as `redis-server <conf> --sentinel`), each in this set's own folder, stopped by pid.
//! The Sentinels call a primary down after one silent second, so a failover takes a few seconds.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{
    current_test, installed_or_skip, log_tail, query, spawn_logged, stop, temp_dir, wait_ready,
    Exited, REDIS_SERVER, START_ATTEMPTS,
};

/// The name the Sentinels monitor the primary under.
pub const MASTER: &str = "mymaster";

/// How long a set may take to be ready: Sentinels find each other through the primary's
/// `__sentinel__:hello` channel, every 2 s.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The running set; dropping it kills every process.
pub struct RedisSentinels {
    dir: tempfile::TempDir,
    /// The data nodes: the first starts as the primary, the others as its replicas (two, so
    /// that after a failover the new primary still has one: `wait_replicas = 1` goes on).
    data: Vec<(u16, Option<Child>)>,
    sentinels: Vec<(u16, Option<Child>)>,
}

impl RedisSentinels {
    pub fn start() -> Option<Self> {
        Self::start_for(&current_test())
    }

    pub fn start_for(test: &str) -> Option<Self> {
        if !installed_or_skip(test, &[REDIS_SERVER]) {
            return None;
        }
        let mut set = Self {
            dir: temp_dir("redis-sentinel-"),
            data: Vec::new(),
            sentinels: Vec::new(),
        };
        let primary = set.start_node("primary", None);
        set.data.push(primary);
        for name in ["replica1", "replica2"] {
            let replica = set.start_node(name, Some(set.data[0].0));
            set.data.push(replica);
        }
        for i in 0..3 {
            let sentinel = set.start_sentinel(i);
            set.sentinels.push(sentinel);
        }
        set.wait_ready();
        Some(set)
    }

    /// `redis://127.0.0.1:PORT` of each Sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(port, _)| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// `redis://127.0.0.1:PORT` of a data node.
    pub fn data_url(port: u16) -> String {
        format!("redis://127.0.0.1:{port}")
    }

    /// The port of the primary, as the Sentinels that answer say (the first that answers).
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinel_urls().iter().find_map(|url| {
            let addr: Vec<String> = query(url, &["SENTINEL", "get-master-addr-by-name", MASTER])?;
            addr.get(1)?.parse().ok()
        })
    }

    /// The ports of the data nodes.
    pub fn data_ports(&self) -> Vec<u16> {
        self.data.iter().map(|(port, _)| *port).collect()
    }

    /// The pid of the data node on `port`, while it runs.
    pub fn pid_of(&self, port: u16) -> Option<u32> {
        self.data
            .iter()
            .find(|(p, _)| *p == port)
            .and_then(|(_, child)| child.as_ref().map(Child::id))
    }

    /// SIGKILL to the data node on `port`.
    pub fn kill(&mut self, port: u16) {
        if let Some((_, child)) = self.data.iter_mut().find(|(p, _)| *p == port) {
            if let Some(child) = child.take() {
                stop(child);
            }
        }
    }

    /// A new data node `name`, a replica of the primary on `primary`: what a supervisor starts
    /// in place of a node that died. Its port.
    pub fn add_replica(&mut self, name: &str, primary: u16) -> u16 {
        let node = self.start_node(name, Some(primary));
        let port = node.0;
        self.data.push(node);
        port
    }

    /// Waits until the Sentinels name a primary other than `old` that says it is a master;
    /// its port, or `None` after `within`.
    pub fn wait_promoted(&self, old: u16, within: Duration) -> Option<u16> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(port) = self.primary_port().filter(|p| *p != old) {
                let role: Option<Vec<redis::Value>> = query(&Self::data_url(port), &["ROLE"]);
                let is_master = role.and_then(|r| r.into_iter().next()).is_some_and(
                    |v| matches!(v, redis::Value::BulkString(ref b) if b.as_slice() == b"master"),
                );
                if is_master {
                    return Some(port);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn start_node(&self, name: &str, replica_of: Option<u16>) -> (u16, Option<Child>) {
        for _ in 0..START_ATTEMPTS {
            let port = super::super::free_port();
            let mut command = Command::new(REDIS_SERVER.name);
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(self.dir.path())
                .args(["--dbfilename", &format!("{name}.rdb")]);
            if let Some(primary) = replica_of {
                command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
            }
            let child = spawn_logged(command, &self.log_path(name));
            let url = Self::data_url(port);
            if let Ok(child) = wait_ready(child, &self.log_path(name), || {
                query::<String>(&url, &["PING"]).is_some()
            }) {
                return (port, Some(child));
            }
        }
        panic!(
            "{name} did not start on {START_ATTEMPTS} free ports; its log ends:\n{}",
            log_tail(&self.log_path(name))
        );
    }

    fn start_sentinel(&self, i: usize) -> (u16, Option<Child>) {
        let name = format!("sentinel{i}");
        for _ in 0..START_ATTEMPTS {
            let port = super::super::free_port();
            let conf = self.dir.path().join(format!("{name}.conf"));
            // Sentinel rewrites its own file (what it learns), so each gets one.
            let text = format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 4000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir = self.dir.path().display(),
                primary = self.data[0].0,
            );
            std::fs::write(&conf, text).expect("sentinel.conf");
            let mut command = Command::new(REDIS_SERVER.name);
            command.arg(&conf).arg("--sentinel");
            let child = spawn_logged(command, &self.log_path(&name));
            let url = format!("redis://127.0.0.1:{port}");
            let started: Result<Child, Exited> = wait_ready(child, &self.log_path(&name), || {
                query::<String>(&url, &["PING"]).is_some()
            });
            if let Ok(child) = started {
                return (port, Some(child));
            }
        }
        panic!(
            "{name} did not start on {START_ATTEMPTS} free ports; its log ends:\n{}",
            log_tail(&self.log_path(&name))
        );
    }

    /// Until the replicas are in sync and every Sentinel knows the primary, both replicas and
    /// the two other Sentinels: only then can a failover be agreed on.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let replica_up = self.data[1..].iter().all(|(port, _)| {
                query::<String>(&Self::data_url(*port), &["INFO", "replication"])
                    .is_some_and(|info| info.contains("master_link_status:up"))
            });
            let sentinels_agree = self.sentinel_urls().iter().all(|url| {
                let replicas: Option<Vec<redis::Value>> =
                    query(url, &["SENTINEL", "replicas", MASTER]);
                let others: Option<Vec<redis::Value>> =
                    query(url, &["SENTINEL", "sentinels", MASTER]);
                replicas.is_some_and(|r| r.len() == 2) && others.is_some_and(|s| s.len() == 2)
            });
            if replica_up && sentinels_agree {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = [
                    "primary",
                    "replica1",
                    "replica2",
                    "sentinel0",
                    "sentinel1",
                    "sentinel2",
                ]
                .iter()
                .map(|n| format!("{n}:\n{}", log_tail(&self.log_path(n))))
                .collect();
                panic!(
                    "the Sentinel set was not ready within {READY_TIMEOUT:?}:\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        for (_, child) in self.sentinels.iter_mut().chain(self.data.iter_mut()) {
            if let Some(child) = child.take() {
                stop(child);
            }
        }
    }
}

impl RedisSentinels {
    /// Waits until every replica has everything the primary on `primary` wrote so far
    /// (`INFO replication` offsets), at most `within`.
    pub fn wait_replicated(&self, primary: u16, within: Duration) -> bool {
        let offset = |port: u16, field: &str| -> Option<u64> {
            let info: String = query(&Self::data_url(port), &["INFO", "replication"])?;
            info.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().parse().ok())
        };
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(target) = offset(primary, "master_repl_offset:") {
                let replicas: Vec<u16> = self
                    .data
                    .iter()
                    .filter(|(p, c)| *p != primary && c.is_some())
                    .map(|(p, _)| *p)
                    .collect();
                if replicas
                    .iter()
                    .all(|p| offset(*p, "slave_repl_offset:").is_some_and(|o| o >= target))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
