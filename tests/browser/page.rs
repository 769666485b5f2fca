//! One open browser page and what tests do with it: navigate, read, click, fill forms, measure
//! the layout, take screenshots under `target/e2e/`, and run axe-core ([`Page::axe`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::common::engines::{current_test, REQUIRE_ENGINES};
use crate::harness::{e2e_dir, eventually, Server};

/// One open browser.
pub struct Page {
    pub client: Client,
}

/// What axe-core found on a page: `(rule, impact, help, elements)`.
pub type Violations = Vec<(String, String, String, Vec<String>)>;

impl Page {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

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
