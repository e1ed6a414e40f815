//! A real browser for end-to-end tests of pages: headless Chromium driven through its own
//! ChromeDriver over WebDriver.
//!
//! Every [`Browser`] starts its own ChromeDriver on a free loopback port, with its own scratch
//! directory (Chromium profile, temp files, the driver's log), so tests run side by side in one
//! process. The driver runs in a process group of its own: dropping the `Browser` (a failed
//! assertion included) kills the driver, Chromium and every Chromium helper, then removes the
//! scratch directory.
//!
//! The viewport is a phone's: ChromeDriver's mobile emulation with the options' width and height in
//! CSS pixels (headless Chromium will not make a window narrower than 500 px, so `--window-size`
//! alone cannot give a 320 px viewport). As on a real phone, a page without
//! `<meta name="viewport" content="width=device-width">` is laid out 980 px wide, and a page wider
//! than the screen is zoomed out (`window.innerWidth` then grows with the content). Touch is
//! emulated when JavaScript is on (with JavaScript off ChromeDriver's clicks hang under touch
//! emulation, so a no-JS browser has a mouse).
//!
//! Chromium and ChromeDriver come from `CHECKOUT_CHROMIUM` and `CHECKOUT_CHROMEDRIVER` (default
//! `/usr/bin/chromium` and `/usr/bin/chromedriver`, Debian's `chromium` and `chromium-driver`);
//! axe-core from `CHECKOUT_AXE_JS` (default `.tools/npm/node_modules/axe-core/axe.min.js`).
//! `scripts/test.sh` installs all three. A missing one fails the test: never a silent skip.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};

/// How often the `wait_for_*` helpers look again.
const POLL: Duration = Duration::from_millis(50);
/// How long ChromeDriver has to answer `/status` as ready.
const DRIVER_READY: Duration = Duration::from_secs(10);
/// How long one WebDriver command may take (page loads and scripts time out after 30 s before).
const COMMAND: Duration = Duration::from_secs(60);

const INSTALL_HINT: &str = "install them with `apt-get install -y --no-install-recommends chromium chromium-driver` \
     (scripts/test.sh does this), or point CHECKOUT_CHROMIUM / CHECKOUT_CHROMEDRIVER at them";

/// The browser's viewport, language and whether pages may run scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserOptions {
    /// Whether pages run their JavaScript. Without it, [`Browser::execute`] still works (WebDriver's
    /// synchronous scripts are not the page's), but [`Browser::axe`] does not: see there.
    pub javascript: bool,
    /// Viewport width in CSS pixels.
    pub width: u32,
    /// Viewport height in CSS pixels.
    pub height: u32,
    /// The browser's languages, sent as `Accept-Language` (e.g. `sw-KE,sw`); `None` leaves
    /// Chromium's default (`en-US`).
    pub accept_language: Option<String>,
}

impl BrowserOptions {
    /// A common phone: 390×844, JavaScript on.
    pub fn phone() -> Self {
        BrowserOptions {
            javascript: true,
            width: 390,
            height: 844,
            accept_language: None,
        }
    }

    /// The narrowest phone screens still in use: 320×640, JavaScript on.
    pub fn narrow() -> Self {
        BrowserOptions {
            width: 320,
            height: 640,
            ..BrowserOptions::phone()
        }
    }

    /// A phone with JavaScript disabled.
    pub fn no_js() -> Self {
        BrowserOptions {
            javascript: false,
            ..BrowserOptions::phone()
        }
    }

    /// The same options with the browser's languages set to `l` (an `Accept-Language` value).
    pub fn lang(self, l: &str) -> Self {
        BrowserOptions {
            accept_language: Some(l.to_string()),
            ..self
        }
    }
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions::phone()
    }
}

/// One rule axe-core found broken on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxeViolation {
    /// The rule, e.g. `image-alt`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for.
    pub help: String,
    /// The offending elements' HTML.
    pub nodes: Vec<String>,
}

pub struct Browser {
    // Dropped in this order: the session, then the driver's process group, then the directory.
    client: Client,
    options: BrowserOptions,
    driver: Driver,
    scratch: Scratch,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with `options`. Panics (saying how to install
    /// them) when Chromium or ChromeDriver is missing.
    pub async fn start(options: BrowserOptions) -> Browser {
        let chromium = tool("CHECKOUT_CHROMIUM", "/usr/bin/chromium", "Chromium");
        let chromedriver = tool("CHECKOUT_CHROMEDRIVER", "/usr/bin/chromedriver", "ChromeDriver");
        let scratch = Scratch::new();
        let driver = Driver::start(&chromedriver, &scratch).await;

        let capabilities = capabilities(&options, &chromium, &scratch.path().join("profile"));
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let client = match tokio::time::timeout(COMMAND, builder.connect(&driver.url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "Chromium ({}) did not start through ChromeDriver: {e}\n{}",
                chromium.display(),
                driver.log_tail()
            ),
            Err(_) => panic!(
                "Chromium ({}) did not start through ChromeDriver within {COMMAND:?}\n{}",
                chromium.display(),
                driver.log_tail()
            ),
        };
        let browser = Browser {
            client,
            options,
            driver,
            scratch,
        };
        let timeouts = TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
            Some(Duration::ZERO),
        );
        if let Err(e) = browser
            .answer("set timeouts", browser.client.update_timeouts(timeouts))
            .await
        {
            panic!("setting the WebDriver timeouts: {e}");
        }
        browser
    }

    pub fn options(&self) -> &BrowserOptions {
        &self.options
    }

    /// Loads `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.answer(&format!("goto {url}"), self.client.goto(url)).await {
            panic!("the browser could not load {url}: {e}");
        }
    }

    pub async fn current_url(&self) -> String {
        match self.answer("current_url", self.client.current_url()).await {
            Ok(url) => url.to_string(),
            Err(e) => panic!("the browser's current URL: {e}"),
        }
    }

    /// Clears the field matching `css`, then types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        if let Err(e) = self.answer(&format!("clear `{css}`"), element.clear()).await {
            panic!("clearing `{css}` on {}: {e}", self.current_url().await);
        }
        if let Err(e) = self
            .answer(&format!("type into `{css}`"), element.send_keys(text))
            .await
        {
            panic!("typing into `{css}` on {}: {e}", self.current_url().await);
        }
    }

    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        if let Err(e) = self.answer(&format!("click `{css}`"), element.click()).await {
            panic!("clicking `{css}` on {}: {e}", self.current_url().await);
        }
    }

    /// Moves into the iframe matching `css` (waiting up to `timeout` for it): later commands act
    /// on its document, whatever its origin, until [`Browser::leave_frame`].
    pub async fn enter_frame(&self, css: &str, timeout: Duration) {
        let started = Instant::now();
        let frame = loop {
            match self.find(css).await {
                Ok(frame) => break frame,
                Err(_) if started.elapsed() < timeout => tokio::time::sleep(POLL).await,
                Err(e) => panic!("no frame `{css}` on {}: {e}", self.current_url().await),
            }
        };
        if let Err(e) = self.answer(&format!("enter frame `{css}`"), frame.enter_frame()).await {
            panic!("entering frame `{css}`: {e}");
        }
    }

    /// Back to the parent document (the top one, from a frame of the page).
    pub async fn leave_frame(&self) {
        if let Err(e) = self
            .answer("enter the parent frame", self.client.enter_parent_frame())
            .await
        {
            panic!("leaving the frame: {e}");
        }
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.element(css).await;
        match self.answer(&format!("text of `{css}`"), element.text()).await {
            Ok(text) => text,
            Err(e) => panic!("the text of `{css}` on {}: {e}", self.current_url().await),
        }
    }

    /// An attribute of the first element matching `css` (`None` when it has none).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.element(css).await;
        match self
            .answer(&format!("attribute `{name}` of `{css}`"), element.attr(name))
            .await
        {
            Ok(value) => value,
            Err(e) => panic!("attribute `{name}` of `{css}` on {}: {e}", self.current_url().await),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        match self.find(css).await {
            Ok(_) => true,
            Err(e) if e.is_no_such_element() => false,
            Err(e) => panic!("looking for `{css}` on {}: {e}", self.current_url().await),
        }
    }

    /// Waits until the first element matching `css` has a text containing `needle`, and returns
    /// that text. On timeout it saves a screenshot (`timeout-<n>`) and panics with the element's
    /// last text and the page's URL.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            match self.find(css).await {
                Ok(element) => match self.answer(&format!("text of `{css}`"), element.text()).await {
                    Ok(text) if text.contains(needle) => return text,
                    Ok(text) => last = Some(text),
                    // The page changed between finding the element and reading it: look again.
                    Err(e) if replaced_meanwhile(&e) => {}
                    Err(e) => panic!("the text of `{css}` on {}: {e}", self.current_url().await),
                },
                Err(e) if e.is_no_such_element() => last = None,
                Err(e) => panic!("looking for `{css}` on {}: {e}", self.current_url().await),
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot(&next_timeout_name()).await;
                let last = match last {
                    Some(text) => format!("its last text was {text:?}"),
                    None => "no element matched".to_string(),
                };
                panic!(
                    "no text containing {needle:?} in `{css}` after {timeout:?}: {last}; page {}; screenshot {}",
                    self.current_url().await,
                    shot.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the page's URL satisfies `pred`, and returns it. On timeout it saves a
    /// screenshot (`timeout-<n>`) and panics with the last URL.
    pub async fn wait_for_url(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if pred(&url) {
                return url;
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot(&next_timeout_name()).await;
                panic!(
                    "the page's URL did not become the expected one after {timeout:?}: it is {url}; screenshot {}",
                    shot.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `js` as the body of a function (its arguments in `arguments`) and returns what it
    /// returns. WebDriver's scripts are not subject to the page's Content-Security-Policy and run
    /// even when the page's JavaScript is disabled.
    pub async fn execute(&self, js: &str, args: Vec<Value>) -> Value {
        match self.answer("execute", self.client.execute(js, args)).await {
            Ok(value) => value,
            Err(e) => panic!("script failed: {e}\nscript: {}", abbreviate(js)),
        }
    }

    /// Saves a PNG of the viewport as `<workspace>/target/browser-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = match self.answer("screenshot", self.client.screenshot()).await {
            Ok(png) => png,
            Err(e) => panic!("screenshot `{name}`: {e}"),
        };
        let dir = workspace_root().join("target").join("browser-screenshots");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Whether the page is wider than the screen (it scrolls sideways, or a phone zooms it out):
    /// `document.documentElement.scrollWidth` against the viewport width of the options (not
    /// `window.innerWidth`, which a phone widens to the content when it zooms out).
    pub async fn page_width_overflows(&self) -> bool {
        let widths = self
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        let width = |i: usize| widths[i].as_u64().expect("a width in CSS pixels");
        let screen = u64::from(self.options.width);
        width(0) > screen || width(1) > screen
    }

    /// Runs axe-core on the page and returns its violations. axe-core is injected through
    /// WebDriver, so the page's Content-Security-Policy does not stop it. It needs the page's
    /// JavaScript on: `axe.run` is asynchronous, and WebDriver's asynchronous scripts never finish
    /// when JavaScript is disabled (panics with [`BrowserOptions::no_js`]).
    pub async fn axe(&self) -> Vec<AxeViolation> {
        assert!(
            self.options.javascript,
            "axe() needs the page's JavaScript: axe.run is asynchronous and WebDriver's asynchronous \
             scripts never finish when JavaScript is disabled; check the page with a JavaScript-enabled browser"
        );
        let loaded = self
            .execute(
                "return typeof window.axe === 'object' && typeof window.axe.run === 'function';",
                vec![],
            )
            .await;
        if loaded != Value::Bool(true) {
            let injected = self
                .execute(&format!("{}\n;return typeof window.axe;", axe_source()), vec![])
                .await;
            assert_eq!(injected, json!("object"), "axe-core did not load into the page");
        }
        let run = r#"
            const done = arguments[arguments.length - 1];
            window.axe.run(document, { resultTypes: ['violations'] }).then(
              (results) => done({ violations: results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.html),
              })) }),
              (error) => done({ error: String(error && error.stack || error) }),
            );
        "#;
        let result = match self.answer("axe.run", self.client.execute_async(run, vec![])).await {
            Ok(result) => result,
            Err(e) => panic!("axe.run on {}: {e}", self.current_url().await),
        };
        if let Some(error) = result.get("error") {
            panic!("axe.run failed on {}: {error}", self.current_url().await);
        }
        let string = |v: &Value| v.as_str().unwrap_or_default().to_string();
        result["violations"]
            .as_array()
            .expect("axe.run's violations")
            .iter()
            .map(|v| AxeViolation {
                id: string(&v["id"]),
                impact: string(&v["impact"]),
                help: string(&v["help"]),
                nodes: v["nodes"]
                    .as_array()
                    .map(|n| n.iter().map(string).collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Panics listing every serious or critical axe-core violation on the page.
    pub async fn assert_accessible(&self) {
        let violations: Vec<AxeViolation> = self
            .axe()
            .await
            .into_iter()
            .filter(|v| v.impact == "serious" || v.impact == "critical")
            .collect();
        if violations.is_empty() {
            return;
        }
        let mut report = String::new();
        for v in &violations {
            report.push_str(&format!("\n- {} ({}): {}", v.id, v.impact, v.help));
            for node in &v.nodes {
                report.push_str(&format!("\n    {node}"));
            }
        }
        panic!(
            "{} serious or critical accessibility violation(s) on {}:{report}",
            violations.len(),
            self.current_url().await
        );
    }

    /// Ends the WebDriver session (Chromium quits), then stops ChromeDriver and removes the
    /// scratch directory. Dropping a `Browser` does the same, killing Chromium instead.
    pub async fn close(self) {
        let Browser {
            client,
            driver,
            scratch,
            ..
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        drop(driver);
        drop(scratch);
    }

    async fn find(&self, css: &str) -> Result<Element, CmdError> {
        self.answer(&format!("find `{css}`"), self.client.find(Locator::Css(css)))
            .await
    }

    /// The browser's answer to a WebDriver command; panics when it does not answer in time (a
    /// test never hangs on the browser).
    async fn answer<T>(&self, what: &str, command: impl Future<Output = Result<T, CmdError>>) -> Result<T, CmdError> {
        match tokio::time::timeout(COMMAND, command).await {
            Ok(result) => result,
            Err(_) => panic!(
                "the browser did not answer `{what}` within {COMMAND:?}\n{}",
                self.driver.log_tail()
            ),
        }
    }

    async fn element(&self, css: &str) -> Element {
        match self.find(css).await {
            Ok(element) => element,
            Err(e) if e.is_no_such_element() => {
                panic!("no element matches `{css}` on {}", self.current_url().await)
            }
            Err(e) => panic!("looking for `{css}` on {}: {e}", self.current_url().await),
        }
    }
}

fn capabilities(options: &BrowserOptions, chromium: &Path, profile: &Path) -> Map<String, Value> {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--window-size={},{}", options.width, options.height));

    let mut prefs = Map::new();
    if !options.javascript {
        prefs.insert("profile.managed_default_content_settings.javascript".into(), json!(2));
    }
    if let Some(lang) = &options.accept_language {
        // `--lang` does not change the header of headless Chromium; this preference does.
        prefs.insert("intl.accept_languages".into(), json!(lang));
    }

    let chrome_options = json!({
        "binary": chromium,
        "args": args,
        "prefs": prefs,
        "mobileEmulation": {
            "deviceMetrics": {
                "width": options.width,
                "height": options.height,
                "pixelRatio": 2.0,
                "mobile": true,
                // With touch emulation and the page's JavaScript disabled, ChromeDriver's clicks
                // never return: touch only where scripts run.
                "touch": options.javascript,
            }
        },
    });
    let mut capabilities = Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), chrome_options);
    capabilities
}

/// ChromeDriver, in a process group of its own so Chromium and its helpers go with it.
struct Driver {
    child: tokio::process::Child,
    group: libc::pid_t,
    url: String,
    log: PathBuf,
}

impl Driver {
    async fn start(chromedriver: &Path, scratch: &Scratch) -> Driver {
        let log = scratch.path().join("chromedriver.log");
        let tmp = scratch.path().join("tmp");
        fs::create_dir_all(&tmp).expect("the browser's temp directory");
        let http = reqwest::Client::new();
        // A port found free may be taken before ChromeDriver binds it: then it exits, and we try
        // another one.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let stderr = fs::File::create(scratch.path().join("chromedriver.stderr")).expect("driver stderr file");
            let child = tokio::process::Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .env("TMPDIR", &tmp)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}; {INSTALL_HINT}", chromedriver.display()));
            let group = child.id().expect("ChromeDriver's pid") as libc::pid_t;
            let mut driver = Driver {
                child,
                group,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            match driver.ready(&http).await {
                Ok(()) => return driver,
                Err(why) => failures.push(format!("port {port}: {why}")),
            }
        }
        let stderr = fs::read_to_string(scratch.path().join("chromedriver.stderr")).unwrap_or_default();
        panic!(
            "ChromeDriver ({}) did not become ready: {}\n{stderr}",
            chromedriver.display(),
            failures.join("; ")
        );
    }

    /// Polls `/status` until ChromeDriver says it is ready.
    async fn ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let deadline = Instant::now() + DRIVER_READY;
        let status = format!("{}/status", self.url);
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(format!("it exited ({exit})"));
            }
            let reply = http.get(&status).timeout(Duration::from_secs(1)).send().await;
            if let Ok(reply) = reply {
                if let Ok(body) = reply.json::<Value>().await {
                    if body["value"]["ready"] == Value::Bool(true) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("/status not ready after {DRIVER_READY:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("ChromeDriver's log ({}), last lines:\n{tail}", self.log.display())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this driver leads; no memory is involved.
        unsafe {
            libc::kill(-self.group, libc::SIGKILL);
        }
        let _ = self.child.start_kill();
    }
}

/// A directory of the browser's own (profile, temp files, logs), removed on drop.
struct Scratch(PathBuf);

/// Scratch directories are `<temp>/checkout-browser-<test process id>-<n>-<nanoseconds>`.
const SCRATCH_PREFIX: &str = "checkout-browser-";

impl Scratch {
    fn new() -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_abandoned);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "{SCRATCH_PREFIX}{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        fs::create_dir(dir.join("profile")).expect("the browser profile directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_dir(&self.0);
    }
}

fn remove_dir(dir: &Path) {
    // Killed processes may still be closing files for a moment.
    for _ in 0..40 {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => std::thread::sleep(Duration::from_millis(25)),
            _ => return,
        }
    }
}

/// The browsers of test processes that died without dropping them (killed by a timeout, or
/// interrupted): their ChromeDriver and Chromium, found by their scratch directory on the command
/// line, are killed, and the directory is removed. Runs once per test process.
fn sweep_abandoned() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let abandoned: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let owner = name
                .to_str()
                .and_then(|name| name.strip_prefix(SCRATCH_PREFIX))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            matches!(owner, Some(pid) if !Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|entry| entry.path())
        .collect();
    if abandoned.is_empty() {
        return;
    }
    let marks: Vec<String> = abandoned.iter().map(|dir| format!("{}/", dir.display())).collect();
    for process in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(process.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if marks.iter().any(|mark| cmdline.contains(mark.as_str())) {
            // SAFETY: kill(2) on a process that names an abandoned scratch directory.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    for dir in &abandoned {
        remove_dir(dir);
    }
}

fn tool(variable: &str, default: &str, what: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(variable).unwrap_or_else(|_| default.to_string()));
    if !path.is_file() {
        panic!(
            "{what} is not installed at {} (the browser tests need it): {INSTALL_HINT}",
            path.display()
        );
    }
    path
}

fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var("CHECKOUT_AXE_JS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".tools/npm/node_modules/axe-core/axe.min.js"));
        fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is not installed at {} ({e}): scripts/test.sh installs the version pinned in \
                 tests/browser-tools/package.json (or: `mkdir -p .tools/npm && cp tests/browser-tools/package*.json \
                 .tools/npm/ && npm ci --prefix .tools/npm`), or set CHECKOUT_AXE_JS",
                path.display()
            )
        })
    })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the tests crate")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn next_timeout_name() -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    format!("timeout-{}", COUNT.fetch_add(1, Ordering::Relaxed) + 1)
}

fn abbreviate(js: &str) -> String {
    if js.len() <= 300 {
        js.to_string()
    } else {
        let cut = (0..=300).rev().find(|&i| js.is_char_boundary(i)).unwrap_or(0);
        format!("{}… ({} bytes)", &js[..cut], js.len())
    }
}

/// The element read went away with its document (the page navigated between finding it and
/// reading it). ChromeDriver says so as a stale element, a missing one, or, when the navigation
/// lands mid-command, as an inspector error naming a node outside the document.
fn replaced_meanwhile(error: &CmdError) -> bool {
    error.is_stale_element_reference()
        || error.is_no_such_element()
        || error.to_string().contains("does not belong to the document")
}
