//! What every fuzz target shares: the macro that makes one of an entry
//! point of `search::server::fuzzing`, and the allocator that aborts past
//! its caps (`Capped`: no input may make the server allocate without
//! bound).

pub use libfuzzer_sys;
pub use search;
use search::server::fuzzing::Capped;

#[global_allocator]
static ALLOCATOR: Capped = Capped::EVERYWHERE;

/// The fuzz target `$name`: `search::server::fuzzing::$name` on each input.
#[macro_export]
macro_rules! target {
    ($name:ident) => {
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| $crate::search::server::fuzzing::$name(data));
    };
}
