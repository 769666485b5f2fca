//! Shared test helpers: an app built from a config file in a temporary folder, and a "browser"
//! that keeps cookies between requests and reads forms' CSRF tokens.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use actix_http::Request;
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

    pub fn key(&self) -> Key {
        self.state.key.clone()
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
                "config.toml" | "secret.key" | "users.db" | "users.db-wal" | "users.db-shm"
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

/// A cookie-keeping client of one app.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn get<S, B>(&mut self, app: &S, path: &str) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        self.send(app, TestRequest::get().uri(path)).await
    }

    pub async fn post<S, B>(&mut self, app: &S, path: &str, form: &[(&str, &str)]) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        self.send(app, TestRequest::post().uri(path).set_form(form))
            .await
    }

    pub async fn send<S, B>(&mut self, app: &S, req: TestRequest) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        let mut req = req;
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.insert_header((header::COOKIE, header));
        }
        let page = call(app, req.to_request()).await;
        for c in page.set_cookies() {
            let expired = c.max_age().is_some_and(|a| a.is_zero() || a.is_negative());
            if expired || c.value().is_empty() {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        page
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("session")
    }

    /// Registers and is logged in as `user_id` (password "password123").
    pub async fn register<S, B>(&mut self, app: &S, user_id: &str) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        let token = self.get(app, "/register").await.csrf_token();
        self.post(
            app,
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

    pub async fn login<S, B>(&mut self, app: &S, user_id: &str, password: &str) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        let token = self.get(app, "/login").await.csrf_token();
        self.post_login(app, user_id, password, &token).await
    }

    /// Posts the login form with the given CSRF token.
    pub async fn post_login<S, B>(
        &mut self,
        app: &S,
        user_id: &str,
        password: &str,
        token: &str,
    ) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        self.post(
            app,
            "/login",
            &[
                ("user_id", user_id),
                ("password", password),
                ("csrf_token", token),
            ],
        )
        .await
    }
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

/// A cookie-keeping client of a real server over TCP (one connection per request).
#[derive(Clone)]
pub struct HttpClient {
    pub addr: std::net::SocketAddr,
    pub cookies: BTreeMap<String, String>,
}

/// A response from [`HttpClient`].
pub struct HttpPage {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpPage {
    pub fn csrf_token(&self) -> Option<String> {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }

    pub fn element_text(&self, id: &str) -> Option<String> {
        Page {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: self.body.clone(),
        }
        .element_text(id)
    }
}

impl HttpClient {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, path: &str) -> Option<HttpPage> {
        self.send("GET", path, "")
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Option<HttpPage> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, &body)
    }

    fn send(&mut self, method: &str, path: &str, body: &str) -> Option<HttpPage> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if !self.cookies.is_empty() {
            let cookies = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let (status, text) = raw_http(self.addr, req)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        for line in head.lines() {
            let Some(value) = line
                .strip_prefix("set-cookie: ")
                .or_else(|| line.strip_prefix("Set-Cookie: "))
            else {
                continue;
            };
            let Ok(c) = Cookie::parse(value.to_owned()) else {
                continue;
            };
            if c.value().is_empty() || c.max_age().is_some_and(|a| a.is_zero()) {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        Some(HttpPage {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }

    /// Registers `user_id` (password "password123") and is logged in.
    pub fn register(&mut self, user_id: &str) -> Option<u16> {
        let token = self.get("/register")?.csrf_token()?;
        let page = self.post(
            "/register",
            &[
                ("user_id", user_id),
                ("user_name", user_id),
                ("password", "password123"),
                ("repassword", "password123"),
                ("csrf_token", &token),
            ],
        )?;
        Some(page.status)
    }

    /// Logs in as `user_id` with "password123".
    pub fn login(&mut self, user_id: &str) -> Option<u16> {
        let token = self.get("/login")?.csrf_token()?;
        let page = self.post(
            "/login",
            &[
                ("user_id", user_id),
                ("password", "password123"),
                ("csrf_token", &token),
            ],
        )?;
        Some(page.status)
    }

    /// The visit count `GET /` shows, if logged in.
    pub fn visit(&mut self) -> Option<u64> {
        let page = self.get("/")?;
        if page.status != 200 {
            return None;
        }
        page.element_text("visits")?.parse().ok()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
