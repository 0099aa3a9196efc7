//! The kinds of traffic a soak runs ([`Scenario`]), how a call can end
//! ([`Outcome`]), and which ends each kind allows.

use std::time::Duration;

use tonic::Code;

use crate::client;
use crate::rpc::code_name;

/// The kinds of traffic, run in turn by every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Scenario {
    /// A unary Search, its answer checked.
    Search,
    /// A Classify stream of three batches, every answer checked.
    Classify,
    /// A Count of a few batches, the totals checked.
    Count,
    /// A Scan of a text, every match counted.
    Scan,
    /// A Scan of a long text on a connection of its own, dropped with the
    /// connection after its first answer: a client that goes away.
    Disconnect,
    /// A Classify with a 100 ms deadline that goes quiet after one answer:
    /// the deadline ends it mid-stream.
    Deadline,
    /// Many Classify streams held open at once, past the server's limit of
    /// calls in flight when `--burst` is set so: some are shed.
    Burst,
}

pub(super) const SCENARIOS: [Scenario; 7] = [
    Scenario::Search,
    Scenario::Classify,
    Scenario::Count,
    Scenario::Scan,
    Scenario::Disconnect,
    Scenario::Deadline,
    Scenario::Burst,
];

impl Scenario {
    /// Its name in the report.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Search => "search",
            Self::Classify => "classify",
            Self::Count => "count",
            Self::Scan => "scan",
            Self::Disconnect => "disconnect",
            Self::Deadline => "deadline",
            Self::Burst => "burst",
        }
    }

    /// Whether a call of this scenario may end with `outcome`. Any call may
    /// be shed while the server is at its limit.
    pub(super) fn allows(self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Code(Code::Ok | Code::ResourceExhausted) => self != Self::Deadline || outcome.is_shed(),
            Outcome::Code(Code::DeadlineExceeded) => self == Self::Deadline,
            Outcome::Dropped => self == Self::Disconnect,
            _ => false,
        }
    }
}

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Outcome {
    /// With this status code.
    Code(Code),
    /// Dropped by the client on purpose (a disconnect).
    Dropped,
    /// Answered OK, but wrongly.
    WrongAnswer,
    /// Not ended within the scenario's time limit.
    Lost,
}

impl Outcome {
    pub(super) fn is_shed(self) -> bool {
        self == Self::Code(Code::ResourceExhausted)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Code(code) => code_name(code),
            Self::Dropped => "DROPPED_BY_CLIENT",
            Self::WrongAnswer => "WRONG_ANSWER",
            Self::Lost => "LOST",
        }
    }

    pub(super) fn of(result: Result<(), client::Error>) -> Self {
        match result {
            Ok(()) => Self::Code(Code::Ok),
            Err(client::Error::Protocol(_)) => Self::WrongAnswer,
            Err(err) => err.code().map_or(Self::Code(Code::Unavailable), Self::Code),
        }
    }
}

/// The longest any one scenario may take before its calls count as lost.
pub(super) const SCENARIO_LIMIT: Duration = Duration::from_secs(30);

/// The deadline of the Deadline scenario.
pub(super) const SHORT_DEADLINE: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scenario_allows_only_its_own_ends() {
        let ok = Outcome::Code(Code::Ok);
        let shed = Outcome::Code(Code::ResourceExhausted);
        let late = Outcome::Code(Code::DeadlineExceeded);
        assert!(Scenario::Search.allows(ok) && Scenario::Search.allows(shed));
        assert!(!Scenario::Search.allows(late) && !Scenario::Search.allows(Outcome::Dropped));
        assert!(Scenario::Deadline.allows(late) && Scenario::Deadline.allows(shed) && !Scenario::Deadline.allows(ok));
        assert!(Scenario::Disconnect.allows(Outcome::Dropped));
        for scenario in SCENARIOS {
            assert!(!scenario.allows(Outcome::Lost) && !scenario.allows(Outcome::WrongAnswer));
            assert!(!scenario.allows(Outcome::Code(Code::Internal)));
        }
    }
}
