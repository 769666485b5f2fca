//! What every browser test stands on: the real server binary on a free loopback port
//! ([`Server`]), Debian's headless Chromium driven over WebDriver by its own `chromedriver`
//! ([`Chrome`], [`Page`]), axe-core injected into a page ([`Page::axe`]), and screenshots under
//! `target/e2e/`. Every process here is started by the test and stopped by its pid when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::common::engines::{current_test, installed_or_skip, Program, REQUIRE_ENGINES};
use crate::common::{free_port, ServerProcess};

pub const CHROMIUM: Program = Program {
    name: "chromium",
    package: "chromium",
};
pub const CHROMEDRIVER: Program = Program {
    name: "chromedriver",
    package: "chromium-driver",
};

/// Desktop and phone viewports (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (360, 780);

/// Whether this machine can run the browser tests (a `SKIPPED` line, or a panic under
/// `SESSION_SERVER_REQUIRE_ENGINES=1`, when it cannot).
pub fn browser_installed() -> bool {
    installed_or_skip(&current_test(), &[CHROMIUM, CHROMEDRIVER])
}

/// The usual start of a test: the server with `session` under `[session]`, a driver, and a
/// browser opened with `options`; `None` (after the skip line) when Chromium is not installed.
pub async fn start(session: &str, options: Options) -> Option<(Server, Chrome, Page)> {
    if !browser_installed() {
        return None;
    }
    let server = Server::start(session);
    let chrome = Chrome::start();
    let page = chrome.open(options).await;
    Some((server, chrome, page))
}

/// Each language (`en`/`ko`, the browser's `--lang`) at each width, named.
pub const VARIANTS: [(&str, &str, &str, (u32, u32)); 4] = [
    ("en", "en-US", "desktop", DESKTOP),
    ("en", "en-US", "phone", PHONE),
    ("ko", "ko-KR", "desktop", DESKTOP),
    ("ko", "ko-KR", "phone", PHONE),
];

/// The real server binary with its own folder and config.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub process: ServerProcess,
}

impl Server {
    /// `session` is TOML under `[session]`; the lifetime is 600 s unless it says otherwise.
    pub fn start(session: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let lifetime = if session.contains("lifetime") {
            ""
        } else {
            "lifetime = 600"
        };
        let text = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n[session]\n{lifetime}\n{session}\n\
             [auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000\n"
        );
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).expect("write config");
        let addr = format!("127.0.0.1:{port}").parse().expect("addr");
        let process = ServerProcess::start(&config, addr);
        Self { dir, process }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.process.addr)
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.dir.path().join("sessions")
    }
}

/// A `chromedriver` on a free loopback port, and the browser profile folder its sessions use.
pub struct Chrome {
    driver: Child,
    port: u16,
    pub profile: tempfile::TempDir,
}

/// How a browser is opened.
#[derive(Clone, Copy)]
pub struct Options {
    /// The browser's UI language, which also sets `Accept-Language` (`--lang`).
    pub lang: &'static str,
    pub size: (u32, u32),
    pub javascript: bool,
    /// The system's dark mode (`prefers-color-scheme: dark`).
    pub dark: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lang: "en-US",
            size: DESKTOP,
            javascript: true,
            dark: false,
        }
    }
}

impl Chrome {
    pub fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        for _ in 0..5 {
            let port = free_port();
            let log =
                std::fs::File::create(profile.path().join(format!("chromedriver-{port}.log")))
                    .expect("driver log");
            let mut driver = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn chromedriver");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self {
                        driver,
                        port,
                        profile,
                    };
                }
                if let Ok(Some(_)) = driver.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
        panic!("chromedriver did not start");
    }

    /// A browser on this driver's profile: closing it and opening another on the same profile
    /// is a browser restart (session cookies gone, persistent ones kept).
    pub async fn open(&self, options: Options) -> Page {
        let binary = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("chromium");
        let (w, h) = options.size;
        let mut prefs = json!({ "intl": { "accept_languages": options.lang } });
        if !options.javascript {
            prefs["profile"] = json!({ "managed_default_content_settings": { "javascript": 2 } });
        }
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--password-store=basic".into(),
            "--hide-scrollbars".into(),
            format!("--lang={}", options.lang),
            format!("--window-size={w},{h}"),
            format!("--user-data-dir={}", self.profile.path().display()),
        ];
        if options.dark {
            // Blink's own setting: 0 is dark. (`--force-dark-mode` alone changes only the UI.)
            args.push("--blink-settings=preferredColorScheme=0".into());
            args.push("--force-dark-mode".into());
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": binary, "args": args, "prefs": prefs },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session");
        // The window's outer size differs from the viewport by the browser's frame: make the
        // viewport itself the size asked for.
        let page = Page { client };
        page.set_viewport(options.size).await;
        page
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One open browser.
pub struct Page {
    pub client: Client,
}

/// What axe-core found on a page: `(rule, impact, help, elements)`.
pub type Violations = Vec<(String, String, String, Vec<String>)>;

impl Page {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn reload(&self) {
        self.client.refresh().await.expect("reload");
    }

    pub async fn close(self) {
        self.client.close().await.expect("close the browser");
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        let found = self.client.find(Locator::Css(css)).await;
        match found {
            Ok(element) => element.text().await.expect("text"),
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    pub async fn html_lang(&self) -> String {
        self.js("return document.documentElement.lang")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types into the form's fields by their `id`, then presses its submit button, as a person
    /// would (the CSRF token is whatever the page put in the form).
    pub async fn fill_and_submit(&self, fields: &[(&str, &str)]) {
        for (id, value) in fields {
            let field = self
                .client
                .find(Locator::Id(id))
                .await
                .unwrap_or_else(|e| panic!("no field #{id}: {e}"));
            field.clear().await.expect("clear");
            field.send_keys(value).await.expect("type");
        }
        self.follow("form button[type=submit]").await;
    }

    /// Clicks what leads to another page, and waits until that page has loaded: WebDriver's
    /// click may return before a form's answer arrives.
    pub async fn follow(&self, css: &str) {
        self.js("window.__before = true").await;
        self.click(css).await;
        let arrived = eventually(Duration::from_secs(15), || async {
            let probe = self
                .client
                .execute(
                    "return window.__before !== true && document.readyState === 'complete'",
                    Vec::new(),
                )
                .await;
            // A navigation in progress can refuse scripts for a moment: not there yet.
            probe.ok().and_then(|v| v.as_bool()).unwrap_or(false)
        })
        .await;
        assert!(arrived, "clicking {css} led nowhere");
    }

    pub async fn register(&self, server: &Server, user: &str) {
        self.goto(&server.url("/register")).await;
        self.fill_and_submit(&[
            ("user_id", user),
            ("user_name", "Alice Kim"),
            ("password", "password123"),
            ("repassword", "password123"),
        ])
        .await;
        assert_eq!(self.path().await, "/", "registered and sent home");
    }

    pub async fn set_viewport(&self, (w, h): (u32, u32)) {
        let inner = self
            .js("return [window.innerWidth, window.innerHeight]")
            .await;
        let (iw, ih) = (
            inner[0].as_u64().unwrap_or(u64::from(w)),
            inner[1].as_u64().unwrap_or(u64::from(h)),
        );
        let rect = self.client.get_window_size().await.expect("window size");
        let (outer_w, outer_h) = rect;
        let frame_w = outer_w.saturating_sub(iw);
        let frame_h = outer_h.saturating_sub(ih);
        self.client
            .set_window_size(
                u32::try_from(u64::from(w) + frame_w).unwrap_or(w),
                u32::try_from(u64::from(h) + frame_h).unwrap_or(h),
            )
            .await
            .expect("resize");
    }

    /// Whether the page fits its viewport's width (no sideways scrolling).
    pub async fn fits_width(&self) -> bool {
        self.js("return document.documentElement.scrollWidth <= window.innerWidth")
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// A PNG of the viewport at `target/e2e/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = e2e_dir();
        std::fs::create_dir_all(&dir).expect("target/e2e");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("write screenshot");
        path
    }

    /// A PNG of the whole page, however tall, at `path`: the window is stretched to the page's
    /// height for the shot and put back.
    pub async fn full_screenshot(&self, path: &Path, width: u32) {
        let height = self
            .js("return Math.ceil(document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .unwrap_or(900);
        self.set_viewport((width, height)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, &png).expect("write screenshot");
    }

    /// axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA
    /// rules and best practices). `None` when axe-core is not installed and the run may skip.
    pub async fn axe(&self) -> Option<Violations> {
        let source = axe_source()?;
        self.client
            .execute(&format!("{source}\nreturn typeof axe;"), Vec::new())
            .await
            .expect("inject axe-core");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => [v.id, v.impact || '', v.help,
                       v.nodes.map(n => n.target.join(' '))])))
                   .catch(e => done([['axe-error', 'critical', String(e), []]]));",
                Vec::new(),
            )
            .await
            .expect("run axe-core");
        let all: Violations = serde_json::from_value(found).expect("axe's answer");
        Some(
            all.into_iter()
                .filter(|(_, impact, _, _)| impact == "serious" || impact == "critical")
                .collect(),
        )
    }

    /// Fails the test with axe-core's findings, if any serious or critical one is on the page.
    pub async fn assert_accessible(&self, what: &str) {
        if let Some(violations) = self.axe().await {
            assert!(
                violations.is_empty(),
                "{what}: accessibility violations: {violations:#?}"
            );
        }
    }
}

/// `target/e2e/`, beside the other build output (honours `CARGO_TARGET_DIR`).
pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("e2e"))
        .unwrap_or_else(|| PathBuf::from("target/e2e"))
}

/// axe-core's script, from the npm package `scripts/test` installs into `tests/browser/`.
fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(_) if std::env::var_os(REQUIRE_ENGINES).is_some_and(|v| v == "1") => panic!(
            "{} is missing and {REQUIRE_ENGINES}=1 forbids skipping: run `npm ci --prefix tests/browser`",
            path.display()
        ),
        Err(_) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED accessibility check in {}: axe-core is not installed (npm ci --prefix tests/browser)",
                current_test()
            );
            None
        }
    }
}

/// Polls `check` every 100 ms for up to `limit`; whether it came true.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
