//! Shared test helpers: an app built from a config file in a temporary folder, the built binary
//! as a child process, and one "browser" ([`Client`]) that keeps cookies between requests and
//! reads forms' CSRF tokens, in process or over TCP.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use actix_http::{HttpMessage as _, Request};
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use session_server::config::Config;
use session_server::web::{app, AppState};

/// A temporary deployment: its folder, config and state.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub state: AppState,
}

impl Site {
    /// A site whose config.toml is the test defaults plus `extra` TOML lines under [session].
    pub fn new(session_extra: &str) -> Self {
        let lifetime = if session_extra.contains("lifetime") {
            ""
        } else {
            "lifetime = 60\n"
        };
        Self::with_config(&format!(
            "[session]\ntype = \"filesystem\"\n{lifetime}{session_extra}\n[auth]\nbcrypt_cost = 4\nmin_password_length = 8\n"
        ))
    }

    pub fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, toml).expect("write config");
        let config = Config::load(&path).expect("valid test config");
        let key = session_server::secret::load_or_create(&config.session.secret_key_file, None)
            .expect("secret key");
        let state = AppState::new(config, key).expect("app state");
        Self { dir, state }
    }

    /// The key that signs the session cookie (each cookie has its own, in `state.keys`).
    pub fn key(&self) -> Key {
        self.state.keys.session.clone()
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.state.config.session.filesystem.dir.clone()
    }

    /// The session files (`*.json`) now in the session folder.
    pub fn session_files(&self) -> Vec<PathBuf> {
        session_files(&self.sessions_dir())
    }

    /// Every file anywhere under the site's folder except config, key and users: to prove that
    /// nothing was written.
    pub fn all_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out.retain(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !matches!(
                name,
                "config.toml" | "secret.key" | "users.json" | "users.json.lock"
            )
        });
        out
    }
}

pub fn session_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// One response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// A whole HTTP/1.1 response as text (not chunked: the server sends lengths).
    pub fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split(' ').nth(1)?.parse::<u16>().ok()?;
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            headers.append(
                header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                header::HeaderValue::from_str(value.trim()).ok()?,
            );
        }
        Some(Self {
            status: StatusCode::from_u16(status).ok()?,
            headers,
            body: body.to_owned(),
        })
    }

    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .expect("page has a csrf_token field");
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// Text of the element with `id="<id>"`.
    pub fn element_text(&self, id: &str) -> Option<String> {
        let marker = format!("id=\"{id}\"");
        let at = self.body.find(&marker)?;
        let open_end = self.body[at..].find('>')? + at + 1;
        let close = self.body[open_end..].find('<')? + open_end;
        Some(self.body[open_end..close].trim().to_owned())
    }

    pub fn set_cookies(&self) -> Vec<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| Cookie::parse(s.to_owned()).ok())
            .collect()
    }

    pub fn set_cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.set_cookies().into_iter().find(|c| c.name() == name)
    }
}

/// How a [`Client`]'s requests reach a server: the app itself, in process (any service from
/// [`start`]), or the built binary over TCP ([`Tcp`]).
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// The response, or `None` when nothing answered (a server that is down or was killed).
    async fn exchange(&self, req: Request) -> Option<Page>;
}

impl<S, B> Transport for S
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    async fn exchange(&self, req: Request) -> Option<Page> {
        Some(call(self, req).await)
    }
}

/// A real server, one TCP connection per request.
#[derive(Clone, Copy, Debug)]
pub struct Tcp(pub std::net::SocketAddr);

impl Transport for Tcp {
    async fn exchange(&self, mut req: Request) -> Option<Page> {
        use futures_util::StreamExt;
        let mut body = Vec::new();
        let mut payload = req.take_payload();
        while let Some(chunk) = payload.next().await {
            body.extend_from_slice(&chunk.ok()?);
        }
        let mut raw = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri()).into_bytes();
        for (name, value) in req.headers() {
            if name != header::CONTENT_LENGTH && name != header::CONNECTION {
                raw.extend_from_slice(name.as_str().as_bytes());
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(value.as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
        }
        if !req.headers().contains_key(header::HOST) {
            raw.extend_from_slice(format!("host: {}\r\n", self.0).as_bytes());
        }
        raw.extend_from_slice(
            format!(
                "connection: close\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        raw.extend_from_slice(&body);
        let (_, text) = raw_http(self.0, raw)?;
        Page::parse(&text)
    }
}

/// A browser: one cookie jar (one expiry rule) and the forms' CSRF tokens, over any
/// [`Transport`]. Like a current browser on this site, it says `Sec-Fetch-Site: same-origin`
/// unless a request sets its own or [`Client::fetch_site`] is `None`.
#[derive(Clone)]
pub struct Client {
    pub cookies: BTreeMap<String, String>,
    pub fetch_site: Option<&'static str>,
}

/// The name most tests know the client by.
pub type Browser = Client;

impl Default for Client {
    fn default() -> Self {
        Self {
            cookies: BTreeMap::new(),
            fetch_site: Some("same-origin"),
        }
    }
}

impl Client {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn get(&mut self, via: &impl Transport, path: &str) -> Page {
        self.send(via, TestRequest::get().uri(path)).await
    }

    pub async fn post(&mut self, via: &impl Transport, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(via, TestRequest::post().uri(path).set_form(form))
            .await
    }

    /// Sends `req` with this browser's cookies; panics when nothing answers.
    pub async fn send(&mut self, via: &impl Transport, req: TestRequest) -> Page {
        self.try_send(via, req).await.expect("the server answered")
    }

    /// Sends `req` with this browser's cookies and keeps the cookies the answer sets.
    pub async fn try_send(&mut self, via: &impl Transport, req: TestRequest) -> Option<Page> {
        let mut req = req.to_request();
        let headers = req.headers_mut();
        if !self.cookies.is_empty() && !headers.contains_key(header::COOKIE) {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.insert(
                header::COOKIE,
                header::HeaderValue::from_str(&jar).expect("cookie header"),
            );
        }
        if let Some(site) = self.fetch_site {
            if !headers.contains_key("sec-fetch-site") {
                headers.insert(
                    header::HeaderName::from_static("sec-fetch-site"),
                    header::HeaderValue::from_static(site),
                );
            }
        }
        let page = via.exchange(req).await?;
        self.keep_cookies(&page);
        Some(page)
    }

    /// The one expiry rule: an empty value, a `Max-Age` of zero or less or an `Expires` in the
    /// past deletes the cookie; anything else sets it.
    fn keep_cookies(&mut self, page: &Page) {
        let now = actix_web::cookie::time::OffsetDateTime::now_utc();
        for c in page.set_cookies() {
            let expired = c.value().is_empty()
                || c.max_age().is_some_and(|a| a.is_zero() || a.is_negative())
                || c.expires_datetime().is_some_and(|at| at <= now);
            if expired {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("session")
    }

    /// Registers and is logged in as `user_id` (password "password123").
    pub async fn register(&mut self, via: &impl Transport, user_id: &str) -> Page {
        let token = self.get(via, "/register").await.csrf_token();
        self.post(
            via,
            "/register",
            &[
                ("user_id", user_id),
                ("user_name", &format!("{user_id} name")),
                ("password", "password123"),
                ("repassword", "password123"),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    pub async fn login(&mut self, via: &impl Transport, user_id: &str, password: &str) -> Page {
        let token = self.get(via, "/login").await.csrf_token();
        self.post_login(via, user_id, password, &token).await
    }

    /// Posts the login form with the given CSRF token.
    pub async fn post_login(
        &mut self,
        via: &impl Transport,
        user_id: &str,
        password: &str,
        token: &str,
    ) -> Page {
        self.post(
            via,
            "/login",
            &[
                ("user_id", user_id),
                ("password", password),
                ("csrf_token", token),
            ],
        )
        .await
    }

    /// The visit count `GET /` shows: `None` when not logged in or when nothing answered.
    pub async fn visit(&mut self, via: &impl Transport) -> Option<u64> {
        let page = self.try_send(via, TestRequest::get().uri("/")).await?;
        if page.status != StatusCode::OK {
            return None;
        }
        page.element_text("visits")?.parse().ok()
    }
}

/// Runs `f` to completion on a runtime of its own: for [`Tcp`] clients in plain threads.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Calls the app as the server would: an error becomes the response it carries.
pub async fn call<S, B>(app: &S, req: Request) -> Page
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let res = match app.call(req).await {
        Ok(res) => res.map_into_boxed_body().into_parts().1,
        Err(e) => e.error_response(),
    };
    let status = res.status();
    let headers = res.headers().clone();
    let body = actix_web::body::to_bytes(res.into_body())
        .await
        .map_err(|_| ())
        .expect("body");
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The app of `site`, ready to call.
pub async fn start(
    site: &Site,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    test::init_service(app(site.state.clone())).await
}

/// A cookie value signed with `key`, as the server would sign it.
pub fn signed_cookie_value(key: &Key, name: &str, value: &str) -> String {
    let mut jar = actix_web::cookie::CookieJar::new();
    jar.signed_mut(key)
        .add(Cookie::new(name.to_owned(), value.to_owned()));
    jar.get(name).expect("just added").value().to_owned()
}

/// The built server binary, run as a child process that is killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub stderr_path: PathBuf,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_session-server");

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl ServerProcess {
    /// Starts the binary with `config` (whose `bind` must be `addr`) and waits until /healthz
    /// answers.
    pub fn start(config: &Path, addr: std::net::SocketAddr) -> Self {
        let stderr_path = config.with_file_name(format!("server-{}.log", addr.port()));
        let log = std::fs::File::create(&stderr_path).expect("log file");
        let child = std::process::Command::new(BIN)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        let server = Self {
            child,
            addr,
            stderr_path,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if raw_http(
                addr,
                "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .is_some_and(|(status, _)| status == 200)
            {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "server did not start: {}",
            std::fs::read_to_string(&server.stderr_path).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as is and returns the status and the whole response text, or `None` when
/// nothing answered.
pub fn raw_http(addr: std::net::SocketAddr, request: impl AsRef<[u8]>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_ref()).ok()?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

/// Writes a config for a real server on a free loopback port in `dir`; returns its path and
/// address. `session` and `filesystem` are extra lines for those tables.
pub fn server_config(
    dir: &Path,
    session: &str,
    filesystem: &str,
) -> (PathBuf, std::net::SocketAddr) {
    let port = free_port();
    let text = format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n[session]\nlifetime = 600\n{session}\n\
         [session.filesystem]\n{filesystem}\n[auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    (path, format!("127.0.0.1:{port}").parse().expect("addr"))
}
