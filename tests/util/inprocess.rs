//! The whole of Outrider started in-process: its config from a TOML text, its
//! listener bound on `127.0.0.1:0`, a oneshot as its shutdown (mini-redis'
//! `server::run(listener, shutdown)`). For tests where a subprocess is not the point.

use std::net::SocketAddr;

use outrider::config::{self, RawConfig};
use outrider::run::RunError;
use outrider::{Mode, RunOutcome};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct InProcess {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    run: JoinHandle<Result<RunOutcome, RunError>>,
}

impl InProcess {
    /// Validates `toml` as a config file is validated (every problem listed on
    /// failure), binds `127.0.0.1:0` and spawns the run in sidecar mode.
    pub async fn start(toml: &str) -> InProcess {
        let raw: RawConfig = toml::from_str(toml).expect("the test's TOML parses");
        let config = config::validate(&raw).unwrap_or_else(|e| panic!("bad test config:\n{e}"));
        let listener = outrider::bind("127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let run = tokio::spawn(outrider::run(config, Mode::Sidecar, listener, async {
            let _ = rx.await;
        }));
        InProcess {
            addr,
            shutdown: Some(tx),
            run,
        }
    }

    /// A GET on the running server (off the runtime thread: the helper is blocking).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (addr, path) = (self.addr, path.to_string());
        tokio::task::spawn_blocking(move || super::get(addr, &path, None))
            .await
            .unwrap()
    }

    /// Polls `/api/v1/status` until `cond` holds (30 s at most) and returns it.
    pub async fn wait_status(
        &self,
        what: &str,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        loop {
            let (code, body) = self.get("/api/v1/status").await;
            let status: serde_json::Value =
                serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            if code == 200 && cond(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {:?}; last status: {status}",
                super::PATIENCE
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Resolves the shutdown future and waits for the run to end.
    pub async fn stop(mut self) -> RunOutcome {
        let _ = self.shutdown.take().unwrap().send(());
        (&mut self.run)
            .await
            .expect("the run did not panic")
            .expect("the run ended without error")
    }
}
