//! Outrider: a sidecar that watches an app through /proc, its cgroup and its output,
//! and serves what it sees as Prometheus metrics.
//!
//! # Layout
//!
//! Layers, bottom to top; a module uses only modules of a layer below its own
//! (`tests/layers.rs` checks it, with the same order). docs/architecture.md draws the
//! tick's data flow.
//!
//! 1. [`units`]: leaf helpers: durations, byte sizes and CPU quantities, `${VAR}`
//!    expansion, label values
//! 2. readers, which know nothing of analysis or alerts:
//!    [`sample`] (/proc and cgroup readers, process groups → [`sample::Sample`]) and
//!    [`logs`] (the app's output: pass-through, framing, classification, counts,
//!    request durations)
//! 3. [`analysis`] (leak, sizing, capacity, cost, autoscaling, scale-to-zero,
//!    where a request's time goes, start-up verdicts from samples and log counts;
//!    record and replay) and [`wrap`] (the child process, signal forwarding, exit code)
//! 4. [`words`]: every verdict, hint and count put into words, once
//! 5. [`actions`]: acting before the kill (a signal, a command) when memory nears
//!    its limit, once per episode
//! 6. [`alerts`]: built-in rules over the verdicts, pending → firing → resolved, and
//!    their delivery
//! 7. [`config`]: file + environment + flags → validated [`config::Config`], each
//!    section's type living with the module that uses it
//! 8. [`history`]: bounded per-target history for the charts
//! 9. [`state`]: what a tick publishes ([`state::Snapshot`]) and the server reads
//! 10. [`tick`]: the sampling tick and the analysis state it keeps between ticks
//! 11. presentation: [`metrics`] (every metric family) and [`page`] (the HTML status
//!     page)
//! 12. [`http`]: `/metrics`, `/healthz`, `/readyz`, `/api/v1/status`, `/`,
//!     `/summary.txt`, behind a bounded accept loop (timeouts, a connection cap)
//! 13. [`run`](mod@run): a whole run: [`bind`], then [`run()`](run::run) spawns the tick, the server and
//!     the log pumps, waits for shutdown (or the wrapped app's exit), and drains
//! 14. commands built on a run: [`report`] (`outrider report`) and [`demo`] (the
//!     built-in misbehaving app)

// Denied, not forbidden: wrap.rs allows it in one function (the parent-death signal
// can only be set in the child between fork and exec), with its SAFETY comment.
#![deny(unsafe_code)]
// Module docs map their private submodules too; read them with
// `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod actions;
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
