//! Outrider: a sidecar that watches an app through /proc, its cgroup and its output,
//! and serves what it sees as Prometheus metrics.
//!
//! # Layout
//! - [`alerts`]: built-in alert rules, pending → firing → resolved
//! - [`analysis`]: leak detection and right-sizing verdicts; record and replay
//! - [`config`]: file + environment + flags → validated [`config::Config`]
//! - [`target`]: choosing and grouping processes; identity, restarts, counters
//! - [`sample`]: /proc and cgroup readers → [`sample::Snapshot`]
//! - [`logs`]: the app's output: pass-through, line framing, counts per stream
//! - [`metrics`]: every metric family, rendered from the snapshot
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`, `/api/v1/status`, `/`, `/summary.txt`
//! - [`history`]: bounded per-target history for the charts
//! - [`page`]: the HTML status page
//! - [`report`]: `outrider report`: watch for a while, then a verdict for humans or CI
//! - [`state`]: what the tick publishes and the server reads
//! - [`wrap`]: child process, signal forwarding, exit code
//! - [`demo`]: the built-in misbehaving app and the `demo` command
//!
//! [`run`] wires them: bind, spawn the tick, the server and the log pumps, wait for
//! shutdown (or, in wrap mode, for the child to exit), then drain within the grace.

#![forbid(unsafe_code)]
// Module docs map their private submodules too; read them with
// `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod alerts;
pub mod analysis;
pub mod config;
pub mod demo;
pub mod history;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod page;
pub mod report;
pub mod run;
pub mod sample;
pub mod state;
pub mod tick;
pub mod units;
pub mod words;
pub mod wrap;

pub use run::{bind, run, Mode, RunOutcome, WrapSpec};
