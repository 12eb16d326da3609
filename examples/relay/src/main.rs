//! `pawl-relay`: run the relay.
//!
//! ```text
//! pawl-relay --db sqlite:relay.db --listen 0.0.0.0:8787 --tls-cert cert.pem --tls-key key.pem
//! pawl-relay --db sqlite:relay.db --plain    # ws:// on loopback, local development only
//! ```
//! Every flag has an environment variable (`PAWL_RELAY_*`). Logs are structured
//! (`RUST_LOG` filters them) and never contain message contents or phone numbers.

use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;
use pawl_relay::{
    DevCodeSender, Limits, PgRelayStore, Registrar, RegistrationLimits, Relay, RelayStore,
    SqliteRelayStore,
};

/// Pawl's store-and-forward relay.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Storage: `sqlite:PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME`.
    #[arg(long, env = "PAWL_RELAY_DB", default_value = "sqlite:pawl-relay.db")]
    db: String,
    /// Address to listen on.
    #[arg(long, env = "PAWL_RELAY_LISTEN", default_value = "127.0.0.1:8787")]
    listen: String,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "PAWL_RELAY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "PAWL_RELAY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Generate a self-signed certificate, write it (PEM) to this file for clients to
    /// pin, and serve with it.
    #[arg(long, env = "PAWL_RELAY_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    tls_self_signed: Option<PathBuf>,
    /// Serve plain ws:// (no TLS): local development only.
    #[arg(long, env = "PAWL_RELAY_PLAIN")]
    plain: bool,
    /// Development code sender: write verification codes to `DIR/<phone>.code`.
    #[arg(long, env = "PAWL_RELAY_CODE_DIR")]
    code_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (keep it private).
    #[arg(long, env = "PAWL_RELAY_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// New connections per second allowed from one address.
    #[arg(long, env = "PAWL_RELAY_CONN_RATE", default_value_t = 20.0)]
    conn_rate: f64,
    /// Burst of new connections allowed from one address.
    #[arg(long, env = "PAWL_RELAY_CONN_BURST", default_value_t = 200.0)]
    conn_burst: f64,
    /// Largest message payload, bytes.
    #[arg(long, env = "PAWL_RELAY_MAX_PAYLOAD", default_value_t = 256 * 1024)]
    max_payload: usize,
    /// Most messages queued per device.
    #[arg(long, env = "PAWL_RELAY_MAX_QUEUE", default_value_t = 50_000)]
    max_queue: u64,
}

fn fatal(msg: String) -> ! {
    tracing::error!("{msg}");
    eprintln!("pawl-relay: {msg}");
    std::process::exit(1);
}

enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    fn parse(v: &str) -> Option<Db> {
        if let Some(p) = v.strip_prefix("sqlite:") {
            return Some(Db::Sqlite(PathBuf::from(p)));
        }
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            return Some(Db::Postgres(v.to_string()));
        }
        None
    }

    /// For the log line: never the password.
    fn describe(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite:{}", p.display()),
            Db::Postgres(url) => match postgres::Config::from_str(url) {
                Ok(c) => {
                    let hosts: Vec<String> = c
                        .get_hosts()
                        .iter()
                        .map(|h| match h {
                            postgres::config::Host::Tcp(name) => name.clone(),
                            postgres::config::Host::Unix(dir) => dir.display().to_string(),
                        })
                        .collect();
                    format!(
                        "postgres:{} on {} as {}",
                        c.get_dbname().unwrap_or("(default)"),
                        hosts.join(","),
                        c.get_user().unwrap_or("(default user)")
                    )
                }
                Err(_) => "postgres".to_string(),
            },
        }
    }

    fn open(&self) -> Result<Box<dyn RelayStore>, pawl_relay::store::StoreFailure> {
        Ok(match self {
            Db::Sqlite(p) => Box::new(SqliteRelayStore::open(p)?),
            Db::Postgres(url) => Box::new(PgRelayStore::connect(url)?),
        })
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let db = Db::parse(&args.db)
        .unwrap_or_else(|| fatal("--db must be sqlite:PATH or postgres://USER@HOST/DBNAME".into()));
    let open = || {
        db.open()
            .unwrap_or_else(|e| fatal(format!("opening {}: {e}", db.describe())))
    };
    // Two connections: one for the group commit, one for everything else.
    let (store, reader) = (open(), open());
    let limits = Limits {
        max_payload: args.max_payload,
        max_queue: args.max_queue,
        connections_per_second: args.conn_rate,
        connection_burst: args.conn_burst,
        ..Limits::default()
    };
    let registrar = Registrar::new(
        Box::new(DevCodeSender { dir: args.code_dir }),
        RegistrationLimits::default(),
    );
    let relay = Relay::with_reader(store, reader, limits, registrar);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .unwrap_or_else(|e| fatal(format!("cannot listen on {}: {e}", args.listen)));
    let identity = match (&args.tls_cert, &args.tls_key, &args.tls_self_signed) {
        (Some(c), Some(k), _) => {
            Some(pawl_relay::tls::Identity::from_pem_files(c, k).unwrap_or_else(|e| fatal(e)))
        }
        (_, _, Some(out)) => {
            let id = pawl_relay::tls::Identity::self_signed(&["localhost", "127.0.0.1"])
                .unwrap_or_else(|e| fatal(e));
            std::fs::write(out, id.leaf_pem())
                .unwrap_or_else(|e| fatal(format!("{}: {e}", out.display())));
            tracing::info!(cert = %out.display(), "self-signed certificate written");
            Some(id)
        }
        _ => None,
    };
    if let Some(m) = &args.metrics_listen {
        let l = tokio::net::TcpListener::bind(m)
            .await
            .unwrap_or_else(|e| fatal(format!("cannot listen on {m}: {e}")));
        tracing::info!(listen = %m, "metrics at /metrics");
        tokio::spawn(pawl_relay::serve_metrics(l, relay.clone()));
    }
    let stop = relay.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: closing connections");
        stop.shutdown();
    });
    let served = match (identity, args.plain) {
        (Some(id), _) => {
            tracing::info!(listen = %args.listen, db = %db.describe(), "listening on wss://");
            pawl_relay::serve_tls(listener, relay, &id).await
        }
        (None, true) => {
            tracing::warn!(listen = %args.listen, db = %db.describe(), "listening on plain ws:// (development only)");
            pawl_relay::serve(listener, relay).await
        }
        (None, false) => fatal(
            "no TLS: give --tls-cert and --tls-key, or --tls-self-signed FILE, or --plain for local development".into(),
        ),
    };
    if let Err(e) = served {
        fatal(e.to_string());
    }
    tracing::info!("stopped");
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
