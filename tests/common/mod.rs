//! Real parts for the integration tests: a Mosquitto of the test's own, the
//! bridge binary as users run it, and an MQTT client that plays Home
//! Assistant and watches what is published.
#![allow(dead_code)]

pub mod chunked;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use folotoy_ha_bridge::config::MqttConfig;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

pub const BUNNY: &str = "fcb467dad0c0";
pub const WAIT: Duration = Duration::from_secs(10);

/// A Mosquitto on a free loopback port, killed when dropped.
pub struct Mosquitto {
    pub port: u16,
    /// The TLS listener, if any; `port` stays plain MQTT for the test's own
    /// clients, so that only the bridge's TLS is under test.
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    persistence: bool,
    tls: Option<TlsListener>,
    /// Logins and an access control list: no anonymous client then.
    guarded: bool,
    child: Option<Child>,
}

/// What the broker's TLS listener shows and asks for.
#[derive(Clone)]
pub struct TlsListener {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Refuse clients without a certificate `ca` signed.
    pub require_certificate: bool,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Self::start_with(false)
    }

    /// With persistence, retained messages survive a restart, as with the
    /// Home Assistant Mosquitto add-on; without, they are lost.
    pub fn start_with(persistence: bool) -> Mosquitto {
        Self::launch(persistence, None)
    }

    /// With a TLS listener on `tls_port` besides the plain one.
    pub fn start_tls(tls: TlsListener) -> Mosquitto {
        Self::launch(false, Some(tls))
    }

    /// Only `logins` (user, password) may connect, each to what the access
    /// control list `acl` (an `acl_file`) lets it read and write, as on the
    /// Mosquitto add-on with an ACL.
    pub fn start_guarded(logins: &[(&str, &str)], acl: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let passwords = dir.path().join("passwords");
        for (i, (user, password)) in logins.iter().enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            if i == 0 {
                cmd.arg("-c");
            }
            let ok = cmd.arg("-b").arg(&passwords).args([user, password]).status();
            assert!(ok.expect("mosquitto_passwd comes with mosquitto").success(), "mosquitto_passwd {user}");
        }
        std::fs::write(dir.path().join("acl"), acl).unwrap();
        let mut m = Mosquitto {
            port: free_port(),
            tls_port: None,
            dir,
            persistence: false,
            tls: None,
            guarded: true,
            child: None,
        };
        m.spawn();
        m
    }

    fn launch(persistence: bool, tls: Option<TlsListener>) -> Mosquitto {
        let port = free_port();
        let tls_port = tls.as_ref().map(|_| free_port());
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mosquitto { port, tls_port, dir, persistence, tls, guarded: false, child: None };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut text = format!("listener {} 127.0.0.1\n", self.port);
        if self.guarded {
            let (passwords, acl) = (self.dir.path().join("passwords"), self.dir.path().join("acl"));
            text +=
                &format!("allow_anonymous false\npassword_file {}\nacl_file {}\n", passwords.display(), acl.display());
        } else {
            text += "allow_anonymous true\n";
        }
        if self.persistence {
            text += &format!("persistence true\npersistence_location {}/\n", self.dir.path().display());
        }
        if let (Some(tls), Some(port)) = (&self.tls, self.tls_port) {
            text += &format!(
                "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display(),
                tls.require_certificate
            );
        }
        std::fs::write(&conf, &text).unwrap();
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (apt-get install mosquitto); .ci/run installs it");
        self.child = Some(child);
        let start = Instant::now();
        for port in std::iter::once(self.port).chain(self.tls_port) {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(start.elapsed() < WAIT, "mosquitto did not start on port {port}");
                if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!("mosquitto stopped ({status}) with this configuration:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// SIGKILL: the broker dies as in a crash or power cut.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            join_reader(c.id());
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn mqtt(&self) -> MqttConfig {
        MqttConfig { host: "127.0.0.1".into(), port: self.port, ..MqttConfig::default() }
    }

    /// Logging in as `user`.
    pub fn mqtt_as(&self, user: &str, password: &str) -> MqttConfig {
        let password = Some(folotoy_ha_bridge::config::Secret::new(password));
        MqttConfig { username: Some(user.into()), password, ..self.mqtt() }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on now, and that no other test of this binary was
/// given: tests run in parallel, and the kernel may hand a port that one test
/// was just given (and has not bound yet) to the next asker too.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<std::collections::BTreeSet<u16>> = Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// A log collected line by line from a process's stderr.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// The threads collecting each logged process's stderr, by process id.
static READERS: Mutex<Vec<(u32, std::thread::JoinHandle<()>)>> = Mutex::new(Vec::new());

/// Starts `cmd` with its stderr collected into `log`, as the process writes
/// it; [`wait_logged`] waits for its end and its last lines.
pub fn spawn_logged(cmd: &mut Command, log: &Lines) -> Child {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = log.clone();
    // It ends once the process has exited and every line it wrote is in `log`.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
    READERS.lock().unwrap().push((child.id(), reader));
    child
}

/// Waits for a process started by [`spawn_logged`] to exit and for every
/// line it wrote to be in its log.
pub fn wait_logged(child: &mut Child) -> ExitStatus {
    let status = child.wait().unwrap();
    join_reader(child.id());
    status
}

/// Once process `pid` has exited: waits until its last lines are logged.
fn join_reader(pid: u32) {
    let reader = {
        let mut readers = READERS.lock().unwrap();
        // The newest: an older entry for a reused pid belongs to a process
        // that is gone (killed processes are joined in `Bridge::kill`).
        readers.iter().rposition(|(p, _)| *p == pid).map(|i| readers.remove(i).1)
    };
    if let Some(reader) = reader {
        let _ = reader.join();
    }
}

/// The bridge binary, with its log collected line by line.
pub struct Bridge {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    /// Where the current run's lines start in `log`: [`Bridge::wait_log`]
    /// looks at this run only, so a line an earlier run wrote never answers it.
    run_start: usize,
    pub dir: PathBuf,
    config: String,
}

impl Bridge {
    /// Starts the bridge with `yaml` as its configuration file. The broker
    /// port, a short command timeout and the state file are filled in unless
    /// `yaml` sets them.
    pub fn start(broker: &Mosquitto, dir: &Path, yaml: &str) -> Bridge {
        let config = format!(
            "mqtt:\n  host: 127.0.0.1\n  port: {}\nstate_file: {}\n{}",
            broker.port,
            dir.join("state.json").display(),
            yaml
        );
        let mut b = Bridge { child: None, log: Arc::default(), run_start: 0, dir: dir.to_owned(), config };
        b.spawn(&[]);
        b
    }

    /// Starts the bridge with `yaml` as all of its configuration but the
    /// state file.
    pub fn start_config(dir: &Path, yaml: &str) -> Bridge {
        Self::start_config_env(dir, yaml, &[])
    }

    pub fn start_config_env(dir: &Path, yaml: &str, env: &[(&str, &str)]) -> Bridge {
        let config = format!("state_file: {}\n{yaml}", dir.join("state.json").display());
        let mut b = Bridge { child: None, log: Arc::default(), run_start: 0, dir: dir.to_owned(), config };
        b.spawn(env);
        b
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn spawn(&mut self, env: &[(&str, &str)]) {
        let file = self.dir.join("bridge.yaml");
        std::fs::write(&file, &self.config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_folotoy-ha-bridge"));
        cmd.arg("--config").arg(&file).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Every line of an earlier run is in: `kill` and `wait_exit` join its reader.
        self.run_start = self.log.lock().unwrap().len();
        self.child = Some(spawn_logged(&mut cmd, &self.log));
    }

    /// Every line of every run.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The lines of the current (or last) run.
    pub fn log_of_this_run(&self) -> Vec<String> {
        self.log.lock().unwrap()[self.run_start..].to_vec()
    }

    /// Waits for a line of the current run containing every one of `parts`.
    pub async fn wait_log(&self, parts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.log_of_this_run().into_iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l;
            }
            if start.elapsed() > WAIT {
                panic!("no log line with {parts:?}; log:\n{}", self.log().join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, as Docker and the Supervisor stop a container; returns how it ended.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let start = Instant::now();
        Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().unwrap();
        let status = self.wait_exit();
        (status, start.elapsed())
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                // Its last lines may still be on the way through the pipe.
                join_reader(child.id());
                return s;
            }
            if start.elapsed() > WAIT {
                let _ = child.kill();
                panic!("bridge did not exit; log:\n{}", self.log().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            join_reader(c.id());
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    /// The QoS it was delivered with (this client subscribes at QoS 1).
    pub qos: QoS,
}

/// An MQTT client that records everything on the filters it subscribed to.
pub struct Client {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    pub seen: Vec<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    pub async fn connect(broker: &Mosquitto, filters: &[&str]) -> Client {
        Self::connect_with(broker, None, filters).await
    }

    /// Logged in as `user` with `password`.
    pub async fn connect_as(broker: &Mosquitto, user: &str, password: &str, filters: &[&str]) -> Client {
        Self::connect_with(broker, Some((user, password)), filters).await
    }

    async fn connect_with(broker: &Mosquitto, login: Option<(&str, &str)>, filters: &[&str]) -> Client {
        let id = format!("test-{}-{}", std::process::id(), free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", broker.port);
        // Big enough for what the hostile tests leave on the broker.
        opts.set_max_packet_size(64 << 20, 64 << 20);
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
        let (client, mut ev) = AsyncClient::new(opts, 1024);
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let want = filters.len();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut subacks = 0;
            if want == 0 {
                let _ = ready.take().unwrap().send(());
            }
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == want {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        let _ = tx.send(Msg { topic: p.topic, payload, retain: p.retain, qos: p.qos });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx).await.expect("subscribed").unwrap();
        Client { client, rx, seen: Vec::new(), task }
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.to_owned()).await.unwrap();
    }

    pub async fn publish_retained(&self, topic: &str, payload: &[u8]) {
        self.client.publish(topic, QoS::AtLeastOnce, true, payload.to_vec()).await.unwrap();
    }

    /// Waits for a message on `topic` whose payload satisfies `pred`
    /// (messages received before are looked at too).
    pub async fn wait_for(&mut self, topic: &str, pred: impl Fn(&str) -> bool) -> Msg {
        if let Some(m) = self.seen.iter().rev().find(|m| m.topic == topic && pred(&m.payload)) {
            return m.clone();
        }
        self.wait_for_next(topic, pred).await
    }

    /// Like [`Client::wait_for`], for a message not received yet.
    pub async fn wait_for_next(&mut self, topic: &str, pred: impl Fn(&str) -> bool) -> Msg {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if m.topic == topic && pred(&m.payload) {
                        return m;
                    }
                }
                _ => panic!(
                    "nothing matching on {topic}; seen on it: {:?}",
                    self.seen.iter().filter(|m| m.topic == topic).map(|m| &m.payload).collect::<Vec<_>>()
                ),
            }
        }
    }

    pub async fn wait_value(&mut self, topic: &str, value: &str) -> Msg {
        self.wait_for(topic, |p| p == value).await
    }

    /// Forgets what was received so far: later waits see only what arrives
    /// from now on (what is already on its way still counts as new).
    pub fn forget(&mut self) {
        self.seen.clear();
    }

    /// Everything that arrives within `d`.
    pub async fn collect(&mut self, d: Duration) -> Vec<Msg> {
        let deadline = tokio::time::Instant::now() + d;
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(m.clone());
            out.push(m);
        }
        out
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn sn(s: &str) -> folotoy_ha_bridge::folotoy::Sn {
    folotoy_ha_bridge::folotoy::Sn::parse(s).unwrap()
}

/// One configured toy named Bunny, answers within 1 s.
pub fn bunny_yaml() -> String {
    format!("folotoy:\n  command_timeout_s: 1\n  toys:\n    - sn: {BUNNY}\n      name: Bunny\n")
}

pub fn state(key: &str) -> String {
    format!("folotoy/{BUNNY}/{key}")
}

pub fn set(key: &str) -> String {
    format!("folotoy/{BUNNY}/{key}/set")
}

/// The message the broker keeps retained on `topic`, as a client connecting
/// now (Home Assistant after a restart) would get it.
pub async fn retained(broker: &Mosquitto, topic: &str) -> Option<String> {
    let mut c = Client::connect(broker, &[topic]).await;
    let msgs = c.collect(Duration::from_millis(300)).await;
    msgs.into_iter().find(|m| m.retain && m.topic == topic).map(|m| m.payload)
}

/// Certificates made for one test with the openssl CLI, in a folder of
/// their own: a CA, a broker certificate it signed for 127.0.0.1 and
/// localhost, a client certificate it signed, and a second, unrelated CA
/// with a broker certificate of its own.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().unwrap() };
        std::fs::write(pki.path("openssl.cnf"), OPENSSL_CNF).unwrap();
        // Mosquitto started as root reads its files as the `mosquitto` user.
        readable_by_all(pki.dir.path());
        for ca in ["ca", "other-ca"] {
            pki.openssl(&format!(
                "req -x509 -new {NEW_KEY} -days 2 -subj /CN=test-{ca} -config openssl.cnf -extensions ca \
                 -keyout {ca}.key -out {ca}.pem"
            ));
        }
        pki.sign("server", "ca", "server");
        pki.sign("other-server", "other-ca", "server");
        pki.sign("client", "ca", "client");
        for f in std::fs::read_dir(pki.dir.path()).unwrap() {
            readable_by_all(&f.unwrap().path());
        }
        pki
    }

    /// `name.pem` and `name.key`, signed by `ca`, with the `ext` section.
    fn sign(&self, name: &str, ca: &str, ext: &str) {
        self.openssl(&format!(
            "req -new {NEW_KEY} -subj /CN={name} -config openssl.cnf -keyout {name}.key -out {name}.csr"
        ));
        let serial = format!("0x{:x}{:x}", std::process::id(), free_port());
        self.openssl(&format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -set_serial {serial} -days 2 \
             -extfile openssl.cnf -extensions {ext} -out {name}.pem"
        ));
    }

    /// Runs `openssl` in the folder; `args` has no spaces within an argument.
    fn openssl(&self, args: &str) {
        let out = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(self.dir.path())
            .output()
            .expect("the openssl CLI must be installed");
        assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The broker's listener: the certificate `ca` signed.
    pub fn listener(&self, require_certificate: bool) -> TlsListener {
        TlsListener {
            ca: self.path("ca.pem"),
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            require_certificate,
        }
    }

    /// A listener whose certificate another CA signed.
    pub fn other_listener(&self) -> TlsListener {
        TlsListener { cert: self.path("other-server.pem"), key: self.path("other-server.key"), ..self.listener(false) }
    }
}

fn readable_by_all(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A P-256 key: quick to make, and what brokers commonly use.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

const OPENSSL_CNF: &str = "[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
";
