//! The `client` flags ([`Args`], parsed by clap) and their checked form
//! ([`Invocation`]): the two stages of a command line, as ripgrep has them.
//!
//! Files:
//! - `flags.rs`: the flags every command takes ([`Args`]), each with its
//!   environment variable.
//! - `commands.rs`: the commands ([`Command`]) and the flags of `bench` and
//!   `soak`.
//! - `values.rs`: flag values that are a duration or a word.
//! - `checked.rs`: what clap cannot check, and the client's options built
//!   from the flags ([`Invocation`]).

mod checked;
mod commands;
mod flags;
mod values;

pub use self::checked::{Call, Input, Invocation, Query};
pub use self::commands::{BenchArgs, Command, SoakArgs};
pub use self::flags::Args;
