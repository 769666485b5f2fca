//! A 3-master Redis Cluster on loopback (no replicas), made with `CLUSTER` commands,
//! whose nodes a test can kill and bring back on the same port and config file.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{
    answers_as_client, current_test, installed_or_skip, log_tail, query_client, spawn_logged, stop,
    temp_dir, wait_ready, Exited, REDIS_SERVER, START_ATTEMPTS, START_TIMEOUT,
};

/// The fewest masters with which the others are a majority that can mark a killed one failed.
const MASTERS: usize = 3;

/// Redis Cluster's hash slots, shared out across the masters.
const SLOTS: usize = 16_384;

/// The cluster bus listens on the node's port + this (Redis's fixed offset).
const BUS_OFFSET: u16 = 10_000;

/// How long a silent node takes to be marked failed. Redis's default (15 s) would make a
/// test wait that long to see a killed node's effect; much shorter risks false failures while
/// the machine is busy compiling.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the nodes are told again to meet while the cluster is not yet whole.
const MEET_AGAIN: Duration = Duration::from_secs(2);

/// A running cluster; dropping it kills every node.
pub struct RedisCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    /// With TLS (clients and the cluster bus alike): the certificates.
    tls: Option<super::TestCerts>,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

impl RedisCluster {
    /// Starts one for the current test (named from its thread), or skips: see the module docs
    /// of `engines`.
    pub fn start() -> Option<Self> {
        Self::start_for(&current_test())
    }

    /// Starts one for `test` (the name the skip line prints), or skips.
    pub fn start_for(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// One whose nodes speak TLS only (to clients and to each other), their certificates
    /// signed by the CA of [`Self::certs`].
    pub fn start_tls_for(test: &str) -> Option<Self> {
        Self::start_with(test, Some(super::TestCerts::new()))
    }

    /// The certificates of a TLS cluster; panics otherwise.
    pub fn certs(&self) -> &super::TestCerts {
        self.tls.as_ref().expect("a TLS cluster")
    }

    fn start_with(test: &str, tls: Option<super::TestCerts>) -> Option<Self> {
        if !installed_or_skip(test, &[REDIS_SERVER]) {
            return None;
        }
        let mut cluster = Self {
            dir: temp_dir("redis-cluster-"),
            nodes: Vec::with_capacity(MASTERS),
            tls,
        };
        for i in 0..MASTERS {
            let node = cluster.start_new_node(i);
            cluster.nodes.push(node);
        }
        cluster.create();
        cluster.wait_healthy(START_TIMEOUT);
        Some(cluster)
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` with TLS) of every node, in node order: what the
    /// server under test is given.
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.nodes
            .iter()
            .map(|n| format!("{scheme}://127.0.0.1:{}", n.port))
            .collect()
    }

    /// `redis://127.0.0.1:PORT` of node `i` (`rediss://` with TLS).
    pub fn url(&self, i: usize) -> String {
        self.urls().swap_remove(i)
    }

    /// A client for node `i` (with TLS, trusting the test CA).
    pub fn client(&self, i: usize) -> redis::Client {
        node_client(self.nodes[i].port, self.tls.as_ref())
    }

    /// Node `i`'s pid; `None` while it is killed.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Node `i`'s own log, across restarts.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// SIGKILL to node `i`, then waits for it to exit. Its slots stay unserved until
    /// [`restart_node`](Self::restart_node): there are no replicas to take over.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(child) = self.nodes[i].child.take() {
            stop(child);
        }
    }

    /// Kills node `i` if it runs, starts it again on the same port with the same cluster config
    /// file (so it rejoins with its slots, and no data), and waits until every node reports
    /// `cluster_state:ok` with all slots healthy.
    pub fn restart_node(&mut self, i: usize) {
        self.kill_node(i);
        let port = self.nodes[i].port;
        let deadline = Instant::now() + START_TIMEOUT;
        let child = loop {
            match self.launch(i, port) {
                Ok(child) => break child,
                Err(Exited) => {
                    assert!(
                        Instant::now() < deadline,
                        "cluster node {i} could not restart on port {port}; its log ends:\n{}",
                        log_tail(&self.log_path(i))
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        self.nodes[i].child = Some(child);
        // A master marked failed, with slots and no replica, is cleared only two node timeouts
        // after the mark, whatever we send.
        self.wait_healthy(START_TIMEOUT + 2 * NODE_TIMEOUT);
    }

    /// A node on fresh free ports (retried when another process takes them first).
    fn start_new_node(&self, i: usize) -> Node {
        for _ in 0..START_ATTEMPTS {
            // A failed attempt may have written a node id for another port: start clean.
            let _ = std::fs::remove_file(self.config_path(i));
            let port = free_node_port();
            if let Ok(child) = self.launch(i, port) {
                return Node {
                    port,
                    child: Some(child),
                };
            }
        }
        panic!(
            "cluster node {i} did not start on {START_ATTEMPTS} free ports; its log ends:\n{}",
            log_tail(&self.log_path(i))
        );
    }

    fn launch(&self, i: usize, port: u16) -> Result<Child, Exited> {
        let mut command = Command::new(REDIS_SERVER.name);
        match &self.tls {
            None => command.args(["--port", &port.to_string()]),
            // TLS only: the port is the TLS one, to clients and on the cluster bus.
            Some(certs) => command
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
                .arg("--tls-cert-file")
                .arg(certs.path("server.pem"))
                .arg("--tls-key-file")
                .arg(certs.path("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(certs.path("ca.pem"))
                .args(["--tls-auth-clients", "no"]),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(self.config_path(i))
            .args([
                "--cluster-node-timeout",
                &NODE_TIMEOUT.as_millis().to_string(),
            ])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path());
        let child = spawn_logged(command, &self.log_path(i));
        let (pid, client) = (child.id(), node_client(port, self.tls.as_ref()));
        wait_ready(child, &self.log_path(i), || answers_as_client(&client, pid))
    }

    /// Assigns the slots across the nodes and makes each node meet every other one.
    ///
    /// What `redis-cli --cluster create` does, but with a full mesh of `CLUSTER MEET`s: it only
    /// has the first node meet the others and waits for gossip to tell the rest, which took 1 to
    /// 7 s on an idle machine and over 10 s in a loaded CI run; the mesh joins in about 2 s.
    fn create(&self) {
        let n = self.nodes.len();
        for i in 0..n {
            let (first, last) = (
                (i * SLOTS / n).to_string(),
                ((i + 1) * SLOTS / n - 1).to_string(),
            );
            self.must(i, &["CLUSTER", "ADDSLOTSRANGE", &first, &last]);
            // Distinct epochs: equal ones are settled by a slow collision round.
            self.must(i, &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
        }
        self.meet_all();
    }

    /// Every node told to meet every other: sent again while waiting, since a handshake that
    /// times out on a busy machine is dropped and gossip may not bring the node back soon.
    fn meet_all(&self) {
        for i in 0..self.nodes.len() {
            let client = self.client(i);
            for (_, other) in self.nodes.iter().enumerate().filter(|(j, _)| *j != i) {
                let port = other.port.to_string();
                // A repeat MEET of a known node is harmless: the handshake ends as that node.
                let _: Option<String> =
                    query_client(&client, &["CLUSTER", "MEET", "127.0.0.1", &port]);
            }
        }
    }

    /// Runs a command on node `i` that must succeed.
    fn must(&self, i: usize, args: &[&str]) {
        let reply: Option<String> = query_client(&self.client(i), args);
        assert_eq!(
            reply.as_deref(),
            Some("OK"),
            "{args:?} on cluster node {i}; its log ends:\n{}",
            log_tail(&self.log_path(i))
        );
    }

    /// Waits until every node reports the whole cluster healthy, for at most `bound`.
    fn wait_healthy(&self, bound: Duration) {
        let deadline = Instant::now() + bound;
        let mut next_meet = Instant::now() + MEET_AGAIN;
        while !(0..self.nodes.len()).all(|i| self.node_healthy(i)) {
            if Instant::now() > next_meet {
                self.meet_all();
                next_meet = Instant::now() + MEET_AGAIN;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.nodes.len())
                    .map(|i| {
                        format!(
                            "node {i} ({}): {}\n{}",
                            self.url(i),
                            self.cluster_info(i).unwrap_or_default(),
                            log_tail(&self.log_path(i))
                        )
                    })
                    .collect();
                panic!(
                    "the cluster was not healthy within {bound:?}:\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `cluster_state:ok`, every slot served by a node it does not suspect, every node known.
    fn node_healthy(&self, i: usize) -> bool {
        let Some(info) = self.cluster_info(i) else {
            return false;
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let masters = MASTERS.to_string();
        field("cluster_state") == Some("ok")
            && field("cluster_slots_ok") == Some(SLOTS.to_string().as_str())
            && field("cluster_known_nodes") == Some(masters.as_str())
    }

    /// Node `i`'s `CLUSTER INFO` text.
    pub fn cluster_info(&self, i: usize) -> Option<String> {
        query_client(&self.client(i), &["CLUSTER", "INFO"])
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("nodes-{i}.conf"))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}.log"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }
}

fn node_client(port: u16, tls: Option<&super::TestCerts>) -> redis::Client {
    match tls {
        None => redis::Client::open(format!("redis://127.0.0.1:{port}")),
        Some(certs) => redis::Client::build_with_tls(
            format!("rediss://127.0.0.1:{port}"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(certs.path("ca.pem")).expect("the test CA")),
            },
        ),
    }
    .expect("a client for a cluster node")
}

/// A free loopback port whose bus port (+10000) is a free port too.
fn free_node_port() -> u16 {
    for _ in 0..1000 {
        let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            continue;
        };
        let Some(bus) = port.checked_add(BUS_OFFSET) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair (P, P+{BUS_OFFSET}) in 1000 tries");
}
