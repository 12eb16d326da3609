//! `pawl-relay [--db sqlite:PATH | --db postgres://...] [--listen ADDR]`: run the relay
//! (plain ws:// for local development; TLS arrives with issue 4).

use std::path::PathBuf;
use std::str::FromStr;

use pawl_relay::{Limits, PgRelayStore, Relay, RelayStore, SqliteRelayStore};

fn usage() -> ! {
    eprintln!(
        "usage: pawl-relay [--db sqlite:PATH | --db postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME] \
         [--listen 127.0.0.1:8787]"
    );
    std::process::exit(2);
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
    let mut db = Db::Sqlite(PathBuf::from("pawl-relay.db"));
    let mut listen = "127.0.0.1:8787".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--db", Some(v)) => db = Db::parse(&v).unwrap_or_else(|| usage()),
            ("--listen", Some(v)) => listen = v,
            _ => usage(),
        }
    }
    let store = match db.open() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pawl-relay: {e}");
            std::process::exit(1);
        }
    };
    let relay = Relay::new(store, Limits::default());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pawl-relay: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "pawl-relay: listening on ws://{listen}/v1/ws (database {})",
        db.describe()
    );
    if let Err(e) = pawl_relay::serve(listener, relay).await {
        eprintln!("pawl-relay: {e}");
        std::process::exit(1);
    }
}
