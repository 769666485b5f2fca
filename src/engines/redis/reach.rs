//! How `[session.redis]` becomes a `redis` client: TLS certificates for `rediss://`, the cluster
//! client, and the Sentinel client that asks for the primary at each new connection. Both the
//! async engine ([`super::connection`]) and the blocking pool ([`super::blocking`]) reach Redis
//! through here, so sessions, accounts, counters and locks follow the same primary.

use std::path::Path;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{Client, ErrorKind, IntoConnectionInfo, RedisError, RedisResult, TlsMode};
use redis::{ClientTlsConfig, TlsCertificates};

use super::config::{SentinelConfig, TlsFiles};

/// The certificates of `files`, read now: `None` when none is set (the system's roots).
pub fn certificates(files: &TlsFiles) -> RedisResult<Option<TlsCertificates>> {
    if files.is_empty() {
        return Ok(None);
    }
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| {
            RedisError::from((
                ErrorKind::InvalidClientConfig,
                "cannot read a TLS file",
                format!("{}: {e}", path.display()),
            ))
        })
    };
    let client_tls = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    let root_cert = files.ca.as_deref().map(read).transpose()?;
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// Every TCP connection to Redis: no Nagle delay (the crate's default keeps it, which holds a
/// pipelined command back until the previous answer), and keepalive probes after 30 s of
/// silence, every 10 s, so that a peer that vanished (a failover behind a load balancer, a
/// dropped NAT entry) is noticed by the kernel instead of a connection waiting forever.
pub fn tcp() -> TcpSettings {
    TcpSettings::default().set_nodelay(true).set_keepalive(
        TcpKeepalive::new()
            .with_time(Duration::from_secs(30))
            .with_interval(Duration::from_secs(10)),
    )
}

fn is_tls(url: &str) -> bool {
    url.starts_with("rediss://")
}

/// A client for the one Redis at `url`, with `files`' certificates when it is `rediss://`.
pub fn client(url: &str, files: &TlsFiles) -> RedisResult<Client> {
    crate::engines::tls::install_provider();
    let info = url.into_connection_info()?.set_tcp_settings(tcp());
    match certificates(files)? {
        Some(certs) if is_tls(url) => Client::build_with_tls(info, certs),
        _ => Client::open(info),
    }
}

/// A cluster client builder for the seed nodes `urls`, with `files`' certificates.
pub fn cluster(urls: &[String], files: &TlsFiles) -> RedisResult<ClusterClientBuilder> {
    crate::engines::tls::install_provider();
    let mut builder = ClusterClient::builder(urls.to_vec()).tcp_settings(tcp());
    if urls.iter().any(|u| is_tls(u)) {
        builder = builder.tls(TlsMode::Secure);
        if let Some(certs) = certificates(files)? {
            builder = builder.certs(certs);
        }
    }
    Ok(builder)
}

/// A client that asks `sentinel`'s Sentinels for the primary, and connects to it with `url`'s
/// password, database and TLS (`certs`, read once by the caller: this runs at each new
/// connection). It only ever connects to a primary: the node the Sentinels name is asked its
/// `ROLE` first.
pub fn sentinel(
    sentinel: &SentinelConfig,
    url: &str,
    certs: Option<&TlsCertificates>,
) -> RedisResult<SentinelClient> {
    crate::engines::tls::install_provider();
    let mut addrs = Vec::new();
    let mut sentinel_password = sentinel.password.clone();
    for u in &sentinel.urls {
        let info = u.as_str().into_connection_info()?;
        if sentinel_password.is_none() {
            sentinel_password = info.redis_settings().password().map(str::to_owned);
        }
        addrs.push(info.addr().clone());
    }
    let mut builder =
        SentinelClientBuilder::new(addrs, &sentinel.master, SentinelServerType::Master)?
            .set_client_to_sentinel_tcp_settings(tcp())
            .set_client_to_redis_tcp_settings(tcp());
    if let Some(password) = sentinel_password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if sentinel.urls.iter().any(|u| is_tls(u)) {
        builder = builder.set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            builder = builder.set_client_to_sentinel_certificates(certs.clone());
        }
    }
    let primary = url.into_connection_info()?;
    let settings = primary.redis_settings();
    builder = builder.set_client_to_redis_db(settings.db());
    if let Some(user) = settings.username() {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = settings.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if is_tls(url) {
        builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            builder = builder.set_client_to_redis_certificates(certs.clone());
        }
    }
    builder.build()
}

/// The blocking pool's connections to the primary the Sentinels name, every step bounded: the
/// `redis` crate's own blocking Sentinel client connects with no time limit, and holds a lock
/// meanwhile, so one silent Sentinel would stall accounts, logins and locks for minutes.
pub struct SentinelManager {
    sentinels: Vec<Client>,
    master: String,
    /// `url`'s password, database and scheme, for the primary.
    primary: redis::ConnectionInfo,
    certs: Option<TlsCertificates>,
    primary_tls: bool,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl SentinelManager {
    pub fn new(
        sentinel: &SentinelConfig,
        url: &str,
        files: &TlsFiles,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> RedisResult<Self> {
        crate::engines::tls::install_provider();
        let certs = certificates(files)?;
        let mut sentinels = Vec::new();
        for u in &sentinel.urls {
            let mut info = u.as_str().into_connection_info()?.set_tcp_settings(tcp());
            if let Some(password) = &sentinel.password {
                let settings = info.redis_settings().clone().set_password(password.clone());
                info = info.set_redis_settings(settings);
            }
            sentinels.push(match &certs {
                Some(certs) if is_tls(u) => Client::build_with_tls(info, certs.clone())?,
                _ => Client::open(info)?,
            });
        }
        Ok(Self {
            sentinels,
            master: sentinel.master.clone(),
            primary: url.into_connection_info()?.set_tcp_settings(tcp()),
            certs,
            primary_tls: is_tls(url),
            connect_timeout,
            command_timeout,
        })
    }

    fn bounded(&self, client: &Client) -> RedisResult<redis::Connection> {
        let conn = client.get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.command_timeout))?;
        conn.set_write_timeout(Some(self.command_timeout))?;
        Ok(conn)
    }

    /// The primary `sentinel` names, connected and checked to be one.
    fn through(&self, sentinel: &Client) -> RedisResult<redis::Connection> {
        let mut asked = self.bounded(sentinel)?;
        let (host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query(&mut asked)?;
        let addr = if self.primary_tls {
            redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(host, port)
        };
        let info = self.primary.clone().set_addr(addr);
        let client = match &self.certs {
            Some(certs) if self.primary_tls => Client::build_with_tls(info, certs.clone())?,
            _ => Client::open(info)?,
        };
        let mut conn = self.bounded(&client)?;
        match redis::cmd("ROLE").query::<redis::Role>(&mut conn)? {
            redis::Role::Primary { .. } => Ok(conn),
            _ => Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "the node the Sentinels name is not a primary (yet)",
            ))),
        }
    }
}

impl r2d2::ManageConnection for SentinelManager {
    type Connection = redis::Connection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<redis::Connection> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match self.through(sentinel) {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            RedisError::from((ErrorKind::InvalidClientConfig, "no Sentinel configured"))
        }))
    }

    fn is_valid(&self, conn: &mut redis::Connection) -> RedisResult<()> {
        redis::cmd("PING").query::<()>(conn)
    }

    fn has_broken(&self, conn: &mut redis::Connection) -> bool {
        !redis::ConnectionLike::is_open(conn)
    }
}
