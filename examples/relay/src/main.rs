//! `pawl-relay --db sqlite:PATH [--listen ADDR]`: run the relay (plain ws:// for local
//! development; TLS arrives with issue 4).

use std::path::PathBuf;

use pawl_relay::{Limits, Relay, SqliteRelayStore};

fn usage() -> ! {
    eprintln!("usage: pawl-relay [--db sqlite:PATH] [--listen 127.0.0.1:8787]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut db = PathBuf::from("pawl-relay.db");
    let mut listen = "127.0.0.1:8787".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--db", Some(v)) => match v.strip_prefix("sqlite:") {
                Some(p) => db = PathBuf::from(p),
                None => usage(),
            },
            ("--listen", Some(v)) => listen = v,
            _ => usage(),
        }
    }
    let store = match SqliteRelayStore::open(&db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pawl-relay: {e}");
            std::process::exit(1);
        }
    };
    let relay = Relay::new(Box::new(store), Limits::default());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pawl-relay: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "pawl-relay: listening on ws://{listen}/v1/ws (database {})",
        db.display()
    );
    if let Err(e) = pawl_relay::serve(listener, relay).await {
        eprintln!("pawl-relay: {e}");
        std::process::exit(1);
    }
}
