//! The processes every browser test stands on: the real server binary on a free loopback port
//! ([`Server`]) and Debian's headless Chromium driven over WebDriver by its own `chromedriver`
//! ([`Chrome`]), which opens a [`Page`]. Every process here is started by the test and stopped
//! by its pid when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use serde_json::{json, Value};

use crate::common::engines::{current_test, installed_or_skip, Program};
use crate::common::{free_port, ServerProcess};
pub use crate::page::Page;

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
                // A group of its own, which the browsers it starts join: see `Drop`.
                .process_group(0)
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
            // No crash handler: it would start in a session of its own, outside the group.
            "--disable-crash-reporter".into(),
            "--disable-breakpad".into(),
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
        let page = Page::new(client);
        page.set_viewport(options.size).await;
        page
    }
}

/// Stops the driver and every browser process it started: killing the driver alone leaves its
/// browsers running when a test never closed them (a failed assertion, say). They are all in
/// the driver's process group, and nothing else is.
impl Drop for Chrome {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/e2e/`, beside the other build output (honours `CARGO_TARGET_DIR`).
pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("e2e"))
        .unwrap_or_else(|| PathBuf::from("target/e2e"))
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
