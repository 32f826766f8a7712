#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod catalog;
pub mod error;
pub mod faults;
pub mod instances;
pub mod request;
pub mod server;
pub mod sql;
pub mod storage;
pub mod tunnel;
pub mod upsert;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::OdpsError;
pub use faults::{CrashPoint, FaultConfig};

/// How to run the emulator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data directory (projects, tables, Parquet files, staged uploads).
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The AccessKey requests must be signed with.
    pub credentials: auth::Credentials,
    /// Injected failures and delays.
    pub faults: FaultConfig,
    /// Largest request body in bytes, both as received and after undoing
    /// its `Content-Encoding`; larger ones get `413 RequestEntityTooLarge`.
    /// Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers before the
    /// connection is closed. Default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Every project's `odps.sql.timezone` property (what `GET
    /// /projects/{p}` reports). Default [`DEFAULT_TIMEZONE`], the
    /// service's own default.
    pub timezone: String,
    /// Every project's `odps.sql.type.system.odps2`: with `false` (a 1.0
    /// project) DDL using a 2.0 type fails unless the job sets it, as the
    /// service does. Default `true`.
    pub odps2: bool,
}

/// Default of [`Config::timezone`]: MaxCompute's default project zone.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Default of [`Config::max_body_bytes`]: 256 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 << 20;
/// Default of [`Config::header_read_timeout`]: 30 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    /// Listens on a free loopback port, no faults.
    pub fn new(data_dir: impl Into<PathBuf>, access_id: &str, access_key: &str) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: auth::Credentials {
                access_id: access_id.to_owned(),
                access_key: access_key.to_owned(),
            },
            faults: FaultConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            timezone: DEFAULT_TIMEZONE.to_owned(),
            odps2: true,
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Binds the port and starts serving in the background.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let catalog = Arc::new(catalog::Catalog::new(config.data_dir.clone()));
        let meta_lock = Arc::new(Mutex::new(()));
        let state = Arc::new(server::AppState {
            tunnel: tunnel::Tunnel::new(
                catalog.clone(),
                meta_lock.clone(),
                faults::Faults::new(config.faults.clone()),
            ),
            upserts: upsert::Upserts::new(
                catalog.clone(),
                meta_lock.clone(),
                addr.to_string(),
                faults::Faults::new(config.faults.clone()),
            ),
            catalog,
            meta_lock,
            credentials: config.credentials.clone(),
            instances: instances::Instances::default(),
            tunnel_host: addr.to_string(),
            max_body: config.max_body_bytes,
            timezone: config.timezone.clone(),
            odps2: config.odps2,
        });
        let header_timeout = config.header_read_timeout;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut backoff = odps_tunnel::backoff::Doubling::for_accept();
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => accepted,
                };
                let stream = match accepted {
                    Ok((stream, _)) => {
                        backoff.reset();
                        stream
                    }
                    Err(e) => {
                        // E.g. EMFILE: retrying at once would spin on the
                        // same error; pause, longer while it lasts.
                        let pause = backoff.next_pause();
                        tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed; pausing");
                        tokio::select! {
                            _ = &mut stopped => break,
                            () = tokio::time::sleep(pause) => continue,
                        }
                    }
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| server::handle(state.clone(), req));
                    let mut builder = http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout);
                    if let Err(e) = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        });
        tracing::info!(%addr, "MaxCompute emulator listening");
        Ok(Self { addr, stop, task })
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service endpoint for clients: `http://127.0.0.1:PORT/api`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The Tunnel endpoint: `http://127.0.0.1:PORT`.
    pub fn tunnel_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Serves until the accept loop ends (it ends only on error or shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
