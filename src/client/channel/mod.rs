//! The channel: where a client's calls go. A target resolved to its
//! addresses, a subchannel per address with its own connection and
//! connectivity state, the policy that picks one per attempt, and what
//! keeps those states true: dialing with TLS and keepalive, health
//! checking (gRFC A17), outlier detection (gRFC A50), re-resolution.
//!
//! It knows nothing of calls: `call/` above it asks for a subchannel, sends
//! an attempt on its transport and tells it how the attempt ended. It may
//! import the client's base (`error.rs`, `stats.rs`, `backoff.rs`) and the
//! crate's shared core; never `call/` nor the client's surface.
//!
//! Files, from the bottom up:
//! - `target.rs`: [`Target`], where to connect, as the user writes it.
//! - `resolver.rs`: a target's addresses, given or looked up, and when again.
//! - `connectivity.rs`: the five connectivity states and [`Connectivity`].
//! - `dial.rs`: dialing one address, each step reported as a state;
//!   [`Keepalive`].
//! - `secure.rs`: TLS over each dialed socket, its errors kept for the calls.
//! - `preface.rs`: READY only once the server has spoken HTTP/2.
//! - `health.rs`: client-side health checking (gRFC A17), per connection.
//! - `outlier.rs`: outlier detection's settings (gRFC A50); `ejection.rs`
//!   its counts per subchannel and its sweep.
//! - `subchannel.rs`: one address with its transport and the one state
//!   calls are picked by; [`Backend`], what `-v` shows of it.
//! - `picker.rs`: [`LoadBalancing`]: pick_first, round_robin, a hedge's pick.
//! - `weights.rs`: weighted round robin's weights from load reports
//!   ([`WeightSettings`]); `edf.rs` its earliest-deadline-first scheduler;
//!   `weighted.rs` the policy in the channel: reports taken per call or out
//!   of band, the scheduler rebuilt, its picks.
//! - `events.rs`: [`Event`]s, what the channel did, for `-v`.
//! - `balancer.rs`: the channel itself (`Balancer`): its subchannels,
//!   picking, starting them; `upkeep.rs`: keeping their states, dialing
//!   in the background, re-resolving, sweeping.
//! - `xds_channel.rs`: an `xds:///` target's channel (gRFC A27): the xDS
//!   client started, each call's cluster, priority and locality;
//!   `xds_state.rs` what it holds and what a call carries for its pick;
//!   `xds_watch.rs` the task following the Listener down to the endpoints;
//!   `xds_routes.rs` the configuration it holds and the route matching;
//!   `xds_policy.rs` each cluster's own policy and outlier detection;
//!   `ring_hash.rs` ring hash's rings and call hashes (gRFC A42).

mod balancer;
mod connectivity;
mod dial;
mod edf;
mod ejection;
mod events;
mod health;
mod outlier;
mod picker;
mod preface;
mod resolver;
mod ring_hash;
mod secure;
mod subchannel;
mod target;
mod upkeep;
mod weighted;
mod weights;
mod xds_channel;
mod xds_policy;
mod xds_routes;
mod xds_state;
mod xds_watch;

pub(in crate::client) use self::balancer::{Balancer, ChannelSettings};
pub use self::connectivity::{Connectivity, ConnectivityState, Transition};
pub(in crate::client) use self::dial::ConnectFailed;
pub use self::dial::Keepalive;
pub use self::events::{Event, SubchannelWatcher};
pub use self::outlier::{FailurePercentageEjection, OutlierDetection, OutlierError, SuccessRateEjection};
pub use self::picker::LoadBalancing;
pub(in crate::client) use self::secure::refusal;
pub use self::subchannel::Backend;
pub(in crate::client) use self::subchannel::Subchannel;
pub use self::target::{InvalidTarget, Target};
pub use self::weights::WeightSettings;
pub(in crate::client) use self::xds_state::CallRoute;
