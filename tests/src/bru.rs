//! The `bru` child process, HTTP replies, raw TLS exchanges and audit export.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous: the machine is small and a debug build is slow to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);
/// Per HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `bru` binary: `BRU_BIN`, else `<workspace>/target/debug/bru`.
pub fn bru_bin() -> PathBuf {
    let path = match std::env::var_os("BRU_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("debug")
            .join("bru"),
    };
    assert!(
        path.is_file(),
        "the bru binary is missing at {}: build it with `cargo build -p gateway` \
         (or point BRU_BIN at it)",
        path.display()
    );
    path
}

/// A reqwest client that trusts only `ca_pem` and resolves `localhost` to 127.0.0.1.
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    crate::init();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("reqwest client")
}

/// A plain-HTTP client (for the ops listener).
pub fn http_client() -> reqwest::Client {
    crate::init();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("reqwest client")
}

/// A rustls client config trusting only `ca_pem`, HTTP/1.1 by ALPN.
pub fn tls_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    crate::init();
    let mut roots = rustls::RootCertStore::empty();
    for der in crate::pki::pem_blocks(ca_pem, "CERTIFICATE") {
        roots
            .add(rustls_pki_types::CertificateDer::from(der))
            .expect("add root");
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

// ---------------------------------------------------------------- replies

/// An HTTP response, fully read.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn from_response(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.bytes().await.expect("read response body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body ({e}); status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The `Bru-Transfer-Id` response header.
    pub fn transfer_id(&self) -> Option<String> {
        self.header("bru-transfer-id").map(str::to_owned)
    }

    /// `code` of a problem body, if it is one.
    pub fn code(&self) -> Option<String> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
    }

    /// Asserts the status, with the body in the message.
    pub fn expect_status(&self, status: u16, context: &str) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{context}: expected status {status}, got {} with body {:?}",
            self.status,
            self.text()
        );
        self
    }

    /// Asserts an RFC 9457 problem with this status and code; returns its body.
    pub fn expect_problem(&self, status: u16, code: &str, context: &str) -> Value {
        assert_eq!(
            (self.status, self.code().as_deref()),
            (status, Some(code)),
            "{context}: expected {status} {code}, got {} with body {:?}",
            self.status,
            self.text()
        );
        self.check_problem_shape(context);
        self.json()
    }

    /// Checks the members and media type every Bru problem has.
    pub fn check_problem_shape(&self, context: &str) {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{context}: problem content-type must be application/problem+json, got {ct:?}"
        );
        let body = self.json();
        for member in ["type", "title", "detail", "code", "transfer_id"] {
            assert!(
                body.get(member).is_some_and(Value::is_string),
                "{context}: problem member {member:?} missing or not a string in {body}"
            );
        }
        assert_eq!(
            body.get("status").and_then(Value::as_u64),
            Some(u64::from(self.status)),
            "{context}: problem `status` must equal the HTTP status in {body}"
        );
        let tid = body["transfer_id"].as_str().unwrap_or_default();
        assert!(!tid.is_empty(), "{context}: empty transfer_id in {body}");
        if let Some(h) = self.header("bru-transfer-id") {
            assert_eq!(
                h, tid,
                "{context}: Bru-Transfer-Id header and problem transfer_id differ"
            );
        }
        if self.status == 401 {
            let www = self.header("www-authenticate").unwrap_or_default();
            assert!(
                www.to_ascii_lowercase().starts_with("bearer"),
                "{context}: a 401 needs `WWW-Authenticate: Bearer …`, got {www:?}"
            );
            // RFC 6750 §3.1: a request without credentials gets no error code.
            if body["code"] != "missing_token" {
                assert!(
                    www.contains("error="),
                    "{context}: a 401 for a bad token needs `error=` in WWW-Authenticate, got {www:?}"
                );
            }
        }
    }

    /// The problem's `transfer_id` (or the response header).
    pub fn problem_transfer_id(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.get("transfer_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| self.transfer_id())
            .unwrap_or_else(|| panic!("no transfer id in reply {:?}", self.text()))
    }
}

/// Sends a request; a transport error fails the test with its cause.
pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
    match rb.send().await {
        Ok(resp) => Reply::from_response(resp).await,
        Err(e) => {
            let mut msg = format!("request failed: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            panic!("{msg}")
        }
    }
}

// ---------------------------------------------------------------- raw HTTP/1.1

/// What came back on one raw connection.
#[derive(Debug)]
pub struct RawExchange {
    pub bytes: Vec<u8>,
    pub responses: Vec<Reply>,
}

impl RawExchange {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The first response; fails if there is none.
    pub fn first(&self) -> &Reply {
        self.responses
            .first()
            .unwrap_or_else(|| panic!("no HTTP response on the connection: {:?}", self.text()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses every complete HTTP/1.x response in `buf`.
pub fn parse_responses(mut buf: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    while buf.starts_with(b"HTTP/") {
        let Some(end) = find(buf, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        let mut rest = &buf[end + 4..];
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let cl = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let mut body = Vec::new();
        if chunked {
            loop {
                let Some(le) = find(rest, b"\r\n") else {
                    rest = &[];
                    break;
                };
                let size_txt = String::from_utf8_lossy(&rest[..le]).into_owned();
                let size =
                    usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                rest = &rest[le + 2..];
                if size == 0 {
                    // Trailers end with an empty line.
                    match find(rest, b"\r\n") {
                        Some(0) => rest = &rest[2..],
                        Some(_) => {
                            rest = match find(rest, b"\r\n\r\n") {
                                Some(p) => &rest[p + 4..],
                                None => &[],
                            }
                        }
                        None => rest = &[],
                    }
                    break;
                }
                let take = size.min(rest.len());
                body.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if rest.starts_with(b"\r\n") {
                    rest = &rest[2..];
                }
            }
        } else if let Some(n) = cl {
            let take = n.min(rest.len());
            body.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        } else {
            body.extend_from_slice(rest);
            rest = &[];
        }
        out.push(Reply {
            status,
            headers,
            body,
        });
        buf = rest;
    }
    out
}

/// Sends `request` as is over TLS to `addr` (SNI `localhost`) and reads until
/// the server closes or `wait` passes.
pub async fn raw_tls(
    tls: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    request: &[u8],
    wait: Duration,
) -> RawExchange {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(tls);
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("server name");
    let mut stream = connector.connect(name, tcp).await.expect("TLS handshake");
    stream.write_all(request).await.expect("write request");
    stream.flush().await.expect("flush");
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let responses = parse_responses(&bytes);
    RawExchange { bytes, responses }
}

// ---------------------------------------------------------------- the process

/// Stdout and stderr of a child, as they come.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<String>>);

impl Logs {
    pub fn text(&self) -> String {
        lock(&self.0).clone()
    }

    fn push(&self, prefix: &str, line: &str) {
        let mut l = lock(&self.0);
        l.push_str(prefix);
        l.push_str(line);
        l.push('\n');
    }
}

/// A running `bru` process.
pub struct Bru {
    child: Option<Child>,
    pub pid: u32,
    pub public: SocketAddr,
    pub ops: SocketAddr,
    /// HTTPS client trusting the test CA.
    pub client: reqwest::Client,
    /// Plain HTTP client for the ops listener.
    pub ops_client: reqwest::Client,
    pub tls: Arc<rustls::ClientConfig>,
    pub logs: Logs,
}

/// Starts `bru ARGS` in `cwd` with `env` added (`RUST_LOG` removed unless
/// given), waits for its `listening public=… ops=…` line.
/// Returns the child, the two addresses and the log collector.
pub async fn spawn_bru(
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
) -> (Child, SocketAddr, SocketAddr, Logs) {
    let bin = bru_bin();
    let mut cmd = Command::new(&bin);
    cmd.args(args).current_dir(cwd).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let logs = Logs::default();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    if let Some(out) = child.stdout.take() {
        let logs = logs.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                logs.push("", &text);
                if text.trim_start().starts_with("listening ") {
                    let _ = tx.send(text.trim().to_owned());
                }
                line.clear();
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        let logs = logs.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                logs.push("[stderr] ", String::from_utf8_lossy(&line).trim_end());
                line.clear();
            }
        });
    }
    let got = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => return Some(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if std::time::Instant::now() > deadline {
                        return None;
                    }
                }
            }
        }
    })
    .await
    .expect("join");
    let Some(line) = got else {
        let status = child.try_wait().ok().flatten();
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(200));
        panic!(
            "`bru {}` did not print `listening public=… ops=…` (exit: {status:?}); output:\n{}",
            args.join(" "),
            logs.text()
        );
    };
    let mut public = None;
    let mut ops = None;
    for word in line.split_whitespace() {
        if let Some(a) = word.strip_prefix("public=") {
            public = a.parse::<SocketAddr>().ok();
        }
        if let Some(a) = word.strip_prefix("ops=") {
            ops = a.parse::<SocketAddr>().ok();
        }
    }
    let (Some(public), Some(ops)) = (public, ops) else {
        let _ = child.kill();
        panic!("cannot parse the listening line {line:?}");
    };
    (child, public, ops, logs)
}

impl Bru {
    pub fn new(child: Child, public: SocketAddr, ops: SocketAddr, logs: Logs, ca_pem: &str) -> Bru {
        Bru {
            pid: child.id(),
            child: Some(child),
            public,
            ops,
            client: https_client(ca_pem),
            ops_client: http_client(),
            tls: tls_config(ca_pem),
            logs,
        }
    }

    /// `https://localhost:PORT{path}` on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.public.port())
    }

    /// `http://127.0.0.1:PORT{path}` on the ops listener.
    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ops)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// Sends raw bytes over TLS and reads the answer (see [`raw_tls`]).
    pub async fn raw(&self, request: &[u8]) -> RawExchange {
        raw_tls(
            Arc::clone(&self.tls),
            self.public,
            request,
            Duration::from_secs(30),
        )
        .await
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// Waits up to 30 s for `needle` in the logs: a line written after the
    /// "listening" line (the per-core workers start after it) may come a
    /// moment later. Panics with the logs if it never does.
    pub async fn wait_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.logs();
            if text.contains(needle) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "bru never logged {needle:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    /// Waits for the process to exit; fails after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    return status;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "bru did not exit within {timeout:?}; output:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Bru {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------- audit export

/// `bru audit export --config FILE --format jsonl`: the records and the raw text.
pub async fn audit_export(config: &Path, cwd: &Path) -> (Vec<Value>, String) {
    let bin = bru_bin();
    let config = config.to_owned();
    let cwd = cwd.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&bin)
            .args(["audit", "export", "--config"])
            .arg(&config)
            .args(["--format", "jsonl"])
            .current_dir(&cwd)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bru audit export");
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut so = child.stdout.take().expect("stdout");
        let mut se = child.stderr.take().expect("stderr");
        let t = std::thread::spawn(move || {
            let _ = se.read_to_string(&mut stderr);
            stderr
        });
        let _ = so.read_to_string(&mut stdout);
        let stderr = t.join().unwrap_or_default();
        let status = child.wait().expect("wait");
        (status, stdout, stderr)
    })
    .await
    .expect("join");
    let (status, stdout, stderr) = out;
    assert!(
        status.success(),
        "`bru audit export` failed ({status}): {stderr}\n{stdout}"
    );
    let records = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("audit export line is not JSON ({e}): {l:?}"))
        })
        .collect();
    (records, stdout)
}
