//! The transport layer: sockets and connections, below any protocol. It
//! binds the listening sockets, accepts (TLS handshakes off the accept
//! loop, the connection limit, a first word within the handshake timeout),
//! serves each connection on hyper with its age and idle time bounded by
//! GOAWAYs, watches the HTTP/2 frames for the floods h2 does not bound, and
//! lets a request body the server stopped reading finish arriving.
//!
//! It knows nothing of gRPC: a connection is served with whatever service
//! stack `server/mod.rs` builds for it, and imports only the server's settings
//! (`config/`) from outside this folder.
//!
//! Files:
//! - `listen.rs`: the sockets, bound before serving ([`Listeners`]).
//! - `accept.rs`: accepting on them ([`incoming`]): TLS handshakes each in
//!   a task of its own, the connections ready to serve in one queue.
//! - `limits.rs`: the connection limit ([`Limits`]).
//! - `first_word.rs`: the first word's deadline and its parser.
//! - `connection.rs`: an accepted connection as hyper reads and writes it
//!   ([`Connection`]): the frame watch fed, an abusive peer's GOAWAY, the
//!   socket closed gently.
//! - `connection_server.rs`: serving each connection on hyper
//!   ([`ConnectionServer`]), its age and idle time bounded.
//! - `activity.rs`: what the stack knows of its connection
//!   ([`ConnectionActivity`]): the peer's address, the calls holding it
//!   busy ([`Busy`]).
//! - `watch.rs`: the HTTP/2 frames both ways, for the floods h2 does not
//!   bound (PING, SETTINGS, streams reset one by one); `cursor.rs` follows
//!   the frames of one direction, `resets.rs` is the reset budget.
//! - `linger.rs`: reading the rest of a body the server refused
//!   ([`read_out`]).
//! - `peer.rs`: what the TLS session says of the peer ([`Peer`]): its
//!   client certificate's names, for the authorization policy.

mod accept;
mod activity;
mod connection;
mod connection_server;
mod cursor;
mod first_word;
mod limits;
mod linger;
mod listen;
mod peer;
mod resets;
mod watch;

pub(in crate::server) use self::accept::incoming;
pub(in crate::server) use self::activity::{Busy, ConnectionActivity};
pub(in crate::server) use self::connection::Connection;
pub(in crate::server) use self::connection_server::ConnectionServer;
pub(in crate::server) use self::limits::Limits;
pub(in crate::server) use self::linger::read_out;
pub use self::listen::Listeners;
pub use self::peer::{Peer, PeerNames};
