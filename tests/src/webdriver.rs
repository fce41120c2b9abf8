//! A small W3C WebDriver client over reqwest (a client crate would compile tauri/wry a second time), plus the
//! processes a real-window test needs: Xvfb and tauri-driver (which starts WebKitWebDriver and the app).

use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An X display of our own, killed on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        for n in 90..140 {
            clear_if_stale(n);
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            let display = format!(":{n}");
            let Ok(mut child) = Command::new("Xvfb")
                .args([
                    display.as_str(),
                    "-screen",
                    "0",
                    "1280x860x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            else {
                panic!("Xvfb is not installed (apt-get install xvfb)");
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                    return Xvfb { child, display };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        panic!("no Xvfb display could be started");
    }
}

/// Removes the lock and socket of display `n` when the server that made them is gone (a killed Xvfb leaves them,
/// and enough of them would use up every display number).
fn clear_if_stale(n: u32) {
    let lock = format!("/tmp/.X{n}-lock");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return;
    };
    let alive = text
        .trim()
        .parse::<u32>()
        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    if !alive {
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{n}"));
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its lock and socket; SIGKILL only if it does not stop.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tauri-driver on a free port; stopped (with WebKitWebDriver) on drop.
pub struct TauriDriver {
    child: Child,
    pub url: String,
}

impl TauriDriver {
    pub async fn start(display: &str, envs: &[(&str, &std::ffi::OsStr)]) -> TauriDriver {
        let (port, native) = (crate::free_port(), crate::free_port());
        let exe = std::env::var("TAURI_DRIVER").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            let cargo_bin = format!("{home}/.cargo/bin/tauri-driver");
            if Path::new(&cargo_bin).exists() {
                cargo_bin
            } else {
                "tauri-driver".into()
            }
        });
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{exe}: {e} (cargo install tauri-driver --locked)"));
        let driver = TauriDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
                if r.status().is_success() {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not answer /status within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        // SIGTERM lets tauri-driver stop WebKitWebDriver (and so the app) too.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session with the app's window.
pub struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    pub async fn new(driver: &TauriDriver, application: &Path) -> Session {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": application}}}});
        let reply: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session reply");
        let id = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_owned();
        Session {
            http,
            base: format!("{}/session/{id}", driver.url),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let reply: Value = request
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver reply");
        reply["value"].clone()
    }

    /// The first element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Waits up to `timeout` for an element to appear.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.find(css).await {
                return id;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no element {css} within {timeout:?}; the window shows: {}",
                    self.visible_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the window shows (its body's text), for a failed wait to say what was there instead.
    pub async fn visible_text(&self) -> String {
        let text = self
            .script("return document.body ? document.body.innerText : '';")
            .await;
        text.as_str().unwrap_or_default().replace('\n', " | ")
    }

    /// Clicks an element. A click the window refuses for a moment (something over the element, the element not
    /// yet interactable) is tried again for up to five seconds; any other refusal fails the test, naming it — a
    /// click WebDriver dropped would otherwise show up later as a wait that runs out.
    pub async fn click(&self, element: &str) {
        if let Err(refusal) = self.try_click(element).await {
            panic!(
                "clicking {element} failed: {refusal}; the window shows: {}",
                self.visible_text().await
            );
        }
    }

    async fn try_click(&self, element: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = self
                .call(
                    reqwest::Method::POST,
                    &format!("/element/{element}/click"),
                    Some(json!({})),
                )
                .await;
            let Some(error) = reply.get("error").and_then(Value::as_str) else {
                return Ok(());
            };
            let message = reply
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let passing = matches!(
                error,
                "element click intercepted" | "element not interactable"
            );
            if !passing || Instant::now() >= deadline {
                return Err(format!("{error}: {message}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces an input's content by typing, as a person would: select all (Ctrl+A), delete, type `text`.
    /// (WebDriver's "clear" bypasses the input events a React form listens to.)
    pub async fn type_into(&self, element: &str, text: &str) {
        let path = format!("/element/{element}/value");
        self.call(
            reqwest::Method::POST,
            &path,
            Some(json!({ "text": "\u{E009}a\u{E000}\u{E003}" })),
        )
        .await;
        self.call(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await;
    }

    /// An input's current value.
    pub async fn value(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/property/value"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.find(css).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "{css} still present after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The text of the first element matching `css`, or "" when there is none.
    pub async fn text_of(&self, css: &str) -> String {
        match self.find(css).await {
            Some(id) => self.text(&id).await,
            None => String::new(),
        }
    }

    /// Waits until the element's text satisfies `done`; returns the text.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let read = || self.text_of(css);
        wait_until(css, "reads", timeout, read, done).await
    }

    /// The text content of the first element matching `css` ("" when there is none), cut-off text included:
    /// WebDriver's text leaves out what it judges hidden — text cut with an ellipsis, rows of a virtualised list.
    pub async fn content_of(&self, css: &str) -> String {
        let css = serde_json::to_string(css).unwrap_or_default();
        self.script(&format!(
            "const e = document.querySelector({css}); return e ? e.textContent : '';"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the element's text content (see [`Session::content_of`]) satisfies `done`; returns it.
    pub async fn wait_content(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let read = || self.content_of(css);
        wait_until(css, "holds", timeout, read, done).await
    }

    /// Fills the New pipeline form's source: REST at `base_url`, `login` auth as the test gateway's user, the
    /// password from environment variable `password_env`.
    pub async fn fill_login_rest_source(&self, base_url: &str, password_env: &str, wait: Duration) {
        self.choose("source.kind", "rest", wait).await;
        self.fill("source.base_url", base_url, wait).await;
        self.choose("source.auth.kind", "login", wait).await;
        self.fill("source.auth.path", "/auth/token", wait).await;
        self.fill("source.auth.username", crate::erp::USERNAME, wait)
            .await;
        self.choose("source.auth.password.mode", "env", wait).await;
        self.fill("source.auth.password.env", password_env, wait)
            .await;
    }

    /// Adds entity `name` to the form: the test gateway's `/api/items`, records at `/data`, offset pages of `size`.
    pub async fn add_items_entity(&self, name: &str, size: u32, wait: Duration) {
        self.click_on("[data-testid='add-entity']", wait).await;
        self.fill("entities.0.name", name, wait).await;
        self.fill("entities.0.path", "/api/items", wait).await;
        self.fill("entities.0.records", "/data", wait).await;
        self.choose("entities.0.pagination.kind", "offset", wait)
            .await;
        self.fill("entities.0.pagination.size", &size.to_string(), wait)
            .await;
    }

    /// Imports a pipeline file's text with the New pipeline screen's Import, and waits until it is stored.
    pub async fn import_pipeline(&self, text: &str, name: &str, timeout: Duration) {
        self.click_on("[data-testid='tab-connect']", timeout).await;
        let import = self.wait_for("[data-testid='import-text']", timeout).await;
        // WebDriver types a line break as the Enter key.
        self.type_into(&import, &text.replace('\n', "\u{E007}"))
            .await;
        self.click_on("[data-testid='import-pipeline']:not([disabled])", timeout)
            .await;
        self.wait_text("[data-testid='connect-notice']", timeout, |t| {
            t.contains(name)
        })
        .await;
    }

    /// Resizes the window (the page's layout at that size is what a user of such a screen sees).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// An element's box on the page: x, y, width, height (CSS pixels).
    pub async fn rect(&self, element: &str) -> (f64, f64, f64, f64) {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/rect"),
                None,
            )
            .await;
        let n = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        (n("x"), n("y"), n("width"), n("height"))
    }

    /// Runs a script in the page and returns its result.
    pub async fn script(&self, body: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": body, "args": [] })),
        )
        .await
    }

    /// Waits for the element `css` and clicks it; an element the page replaced between the two (a re-render) is
    /// found again.
    pub async fn click_on(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let element = self.wait_for(css, timeout).await;
            match self.try_click(&element).await {
                Ok(()) => return,
                Err(refusal)
                    if refusal.starts_with("stale element") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(refusal) => panic!(
                    "clicking {css} failed: {refusal}; the window shows: {}",
                    self.visible_text().await
                ),
            }
        }
    }

    /// Clicks `css` until `shown` appears: a click that lands while the screen is still moving (a list above the
    /// button refreshed and pushed it down) reaches nothing, so it is given again while the button is still there.
    pub async fn click_until_shown(&self, css: &str, shown: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.find(css).await.is_some() {
                self.click_on(css, timeout).await;
            }
            let settle = Instant::now() + Duration::from_secs(3);
            while Instant::now() < settle {
                if self.find(shown).await.is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} did not show {shown} within {timeout:?}; the window shows: {}",
                self.visible_text().await
            );
        }
    }

    /// Picks `value` in the form's select `field-{field}`.
    pub async fn choose(&self, field: &str, value: &str, timeout: Duration) {
        self.click_on(
            &format!("[data-testid='field-{field}'] option[value='{value}']"),
            timeout,
        )
        .await;
    }

    /// Types `text` into the form's input `field-{field}` (replacing what it held).
    pub async fn fill(&self, field: &str, text: &str, timeout: Duration) {
        let input = self
            .wait_for(&format!("[data-testid='field-{field}']"), timeout)
            .await;
        self.type_into(&input, text).await;
    }

    /// Waits for the live run on Pipelines to end and asserts it completed — cleanly or with failed records (else
    /// fails with the run's error).
    pub async fn assert_run_completes(&self, timeout: Duration) {
        let status = self
            .wait_text("[data-testid='run-status']", timeout, |t| {
                t != "running" && !t.is_empty()
            })
            .await;
        assert!(
            status.starts_with("completed"),
            "{status}: {}",
            self.text_of("[data-testid='run-error']").await
        );
    }

    /// On the Schema screen: Apply…, confirmed, until it says the schema was applied.
    pub async fn apply_schema(&self, timeout: Duration) {
        self.click_on("[data-testid='apply-schema']:not(:disabled)", timeout)
            .await;
        self.click_on("[data-testid='confirm-apply-yes']", timeout)
            .await;
        self.wait_for("[data-testid='applied']", timeout).await;
    }

    /// A first Run stops for the schema review (no table is created without it): waits for that stop, opens the
    /// review from the run's "Review schema", applies it (confirmed), and runs `pipeline` again from Pipelines.
    pub async fn review_and_run(&self, pipeline: &str, timeout: Duration) {
        self.wait_text("[data-testid='run-error']", timeout, |t| {
            t.contains("schema review needed")
        })
        .await;
        self.click_until_shown(
            "[data-testid='review-schema']",
            "[data-testid='review-refresh']",
            timeout,
        )
        .await;
        self.apply_schema(timeout).await;
        self.click_on("[data-testid='tab-pipelines']", timeout)
            .await;
        self.click_on(
            &format!("[data-testid='run-{pipeline}']:not([disabled])"),
            timeout,
        )
        .await;
    }

    pub async fn screenshot(&self, path: &Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot base64");
        std::fs::write(path, png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// Reads `read` until `done` holds of what it read, or the timeout passes (then fails naming `css`).
async fn wait_until<F, Fut>(
    css: &str,
    verb: &str,
    timeout: Duration,
    read: F,
    done: impl Fn(&str) -> bool,
) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let text = read().await;
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} still {verb} {text:?} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The built app in a window of its own: a private display, tauri-driver, a session, and an app-data folder
/// (XDG_DATA_HOME) that starts empty, as on a first start.
pub struct AppWindow {
    // Dropped in this order: the app goes (with tauri-driver) before its display and its data folder.
    _driver: TauriDriver,
    _xvfb: Xvfb,
    pub session: Session,
    pub data: tempfile::TempDir,
}

impl AppWindow {
    pub async fn open() -> AppWindow {
        AppWindow::open_with(&[]).await
    }

    /// The app with extra environment variables (e.g. `DBUS_SESSION_BUS_ADDRESS` of a test keyring).
    pub async fn open_with(extra: &[(&str, &std::ffi::OsStr)]) -> AppWindow {
        let app = crate::built_binary("syncflow-console");
        let data = tempfile::tempdir().expect("app data dir");
        let xvfb = Xvfb::start();
        let mut envs: Vec<(&str, &std::ffi::OsStr)> = vec![
            ("XDG_DATA_HOME", data.path().as_os_str()),
            ("XDG_CONFIG_HOME", data.path().as_os_str()),
        ];
        envs.extend_from_slice(extra);
        let driver = TauriDriver::start(&xvfb.display, &envs).await;
        let session = Session::new(&driver, &app).await;
        AppWindow {
            _driver: driver,
            _xvfb: xvfb,
            session,
            data,
        }
    }

    pub fn app_dir(&self) -> std::path::PathBuf {
        self.data.path().join(syncflow_engine::APP_IDENTIFIER)
    }
}
