//! The transport layer: sockets and connections, below any protocol. It
//! binds the listening sockets, accepts (TLS handshakes off the accept
//! loop, the connection limit, a first word within the handshake timeout),
//! serves each connection on hyper with its age and idle time bounded by
//! GOAWAYs, watches the HTTP/2 frames for the floods h2 does not bound, and
//! lets an HTTP/1.1 body the server stopped reading finish arriving.
//!
//! It knows nothing of gRPC: a connection is served with whatever service
//! stack `server/mod.rs` builds for it, and imports only the server's settings
//! (`config.rs`) from outside this folder.
//!
//! Files:
//! - `listen.rs`: the sockets, bound before serving ([`Listeners`]).
//! - `accept.rs`: accepting on them: the connection limit ([`Limits`]),
//!   TLS handshakes each in a task of its own, the first word's deadline.
//! - `conn.rs`: serving each connection on hyper ([`Serving`]), its age and
//!   idle time bounded; what the stack knows of its connection ([`Peer`]).
//! - `watch.rs`: the HTTP/2 frames both ways, for the floods h2 does not
//!   bound (PING, SETTINGS, streams reset one by one).
//! - `linger.rs`: reading the rest of an HTTP/1.1 body the server refused.

mod accept;
mod conn;
mod linger;
mod listen;
mod watch;

pub(in crate::server) use self::accept::{Limits, incoming};
pub(in crate::server) use self::conn::{Busy, Peer, Serving};
pub use self::listen::Listeners;
