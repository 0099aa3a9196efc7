//! Load reports (ORCA): their flags, checked into the server's reporter.

use clap::Args;
use clap::builder::BoolishValueParser;

use super::defaults::ORCA_MIN_INTERVAL;
use crate::server::orca::{Figures, Orca, OrcaSettings};

/// The load report flags, flattened into the server's.
#[derive(Debug, Clone, Args)]
pub struct OrcaArgs {
    /// Report the server's load (ORCA): CPU, memory and application
    /// utilization, calls and errors per second, in every call's
    /// endpoint-load-metrics-bin trailer and on the out-of-band stream
    /// xds.service.orca.v3.OpenRcaService (docs/server.md, "Load reports").
    #[arg(long, env = "SEARCH_ORCA", value_parser = BoolishValueParser::new())]
    pub orca: bool,

    /// The shortest interval the out-of-band load report stream sends at;
    /// a client asking for less gets this.
    #[arg(long, env = "SEARCH_ORCA_MIN_INTERVAL", value_name = "DURATION", default_value_t = ORCA_MIN_INTERVAL.into())]
    pub orca_min_interval: humantime::Duration,
}

impl OrcaArgs {
    /// The reporter the flags ask for: measured figures, when `--orca`.
    #[must_use]
    pub fn reporter(&self) -> Option<Orca> {
        let settings = OrcaSettings { figures: Figures::Measured, min_interval: self.orca_min_interval.into() };
        self.orca.then(|| Orca::new(settings))
    }
}
