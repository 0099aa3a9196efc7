//! The interop test cases, by their names in gRPC's interop test
//! descriptions, each doing what its procedure says and checking what its
//! client asserts. The compression cases call over a bare HTTP/2
//! connection (`raw.rs`); the others through tonic's generated client.
//!
//! Files:
//! - `mod.rs`: the cases by name ([`Case`]), each run on its connection.
//! - `calls.rs`: the cases over tonic's generated client.
//! - `compressed.rs`: the compression cases, over a bare HTTP/2 connection.
//! - `payloads.rs`: the messages the cases send and the checks on answers.
//! - `orca.rs`: the load report cases, per call and out of band.

mod calls;
mod compressed;
mod orca;
mod payloads;

use tonic::Code;

use self::payloads::expect_code;
use super::client::{Failed, InteropTarget};
use super::raw::Raw;
use crate::pb::testing::Empty;
use crate::pb::testing::test_service_client::TestServiceClient;
use crate::pb::testing::unimplemented_service_client::UnimplementedServiceClient;

/// The cases, as gRPC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A zero-byte request and answer.
    EmptyUnary,
    /// 271,828 bytes sent, 314,159 answered.
    LargeUnary,
    /// A request the server expects compressed: refused uncompressed, taken
    /// compressed; one expected uncompressed taken as it is.
    ClientCompressedUnary,
    /// An answer the client asks to be compressed, and one it asks not to be.
    ServerCompressedUnary,
    /// Four messages up, their sizes added up.
    ClientStreaming,
    /// A stream with a compressed message and an uncompressed one.
    ClientCompressedStreaming,
    /// Four messages down, of the sizes asked for.
    ServerStreaming,
    /// Two messages down, the first compressed, the second not.
    ServerCompressedStreaming,
    /// Four requests, each answered before the next is sent.
    PingPong,
    /// A bidirectional call with no message either way.
    EmptyStream,
    /// A client stream cancelled before its first message.
    CancelAfterBegin,
    /// A bidirectional call cancelled after its first answer.
    CancelAfterFirstResponse,
    /// A bidirectional call whose 1 ms deadline passes while the server waits.
    TimeoutOnSleepingServer,
    /// Metadata echoed in the answer's headers and (binary) trailers.
    CustomMetadata,
    /// A status code and message asked for, unary and bidirectional.
    StatusCodeAndMessage,
    /// A status message of whitespace and Unicode, sent back exactly.
    SpecialStatusMessage,
    /// A method the service declares and does not implement.
    UnimplementedMethod,
    /// A service the server does not serve.
    UnimplementedService,
    /// A load report asked for comes back in the call's trailer.
    OrcaPerRpc,
    /// Figures set by a stream's requests come on the out-of-band reports.
    OrcaOob,
}

impl Case {
    /// Every case, in the order of gRPC's descriptions.
    pub const ALL: [Self; 18] = [
        Self::EmptyUnary,
        Self::LargeUnary,
        Self::ClientCompressedUnary,
        Self::ServerCompressedUnary,
        Self::ClientStreaming,
        Self::ClientCompressedStreaming,
        Self::ServerStreaming,
        Self::ServerCompressedStreaming,
        Self::PingPong,
        Self::EmptyStream,
        Self::CancelAfterBegin,
        Self::CancelAfterFirstResponse,
        Self::TimeoutOnSleepingServer,
        Self::CustomMetadata,
        Self::StatusCodeAndMessage,
        Self::SpecialStatusMessage,
        Self::UnimplementedMethod,
        Self::UnimplementedService,
    ];

    /// The load report cases: apart from [`Case::ALL`], as only a server
    /// with load reports on passes them.
    pub const ORCA: [Self; 2] = [Self::OrcaPerRpc, Self::OrcaOob];

    /// The case's name (`large_unary`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::EmptyUnary => "empty_unary",
            Self::LargeUnary => "large_unary",
            Self::ClientCompressedUnary => "client_compressed_unary",
            Self::ServerCompressedUnary => "server_compressed_unary",
            Self::ClientStreaming => "client_streaming",
            Self::ClientCompressedStreaming => "client_compressed_streaming",
            Self::ServerStreaming => "server_streaming",
            Self::ServerCompressedStreaming => "server_compressed_streaming",
            Self::PingPong => "ping_pong",
            Self::EmptyStream => "empty_stream",
            Self::CancelAfterBegin => "cancel_after_begin",
            Self::CancelAfterFirstResponse => "cancel_after_first_response",
            Self::TimeoutOnSleepingServer => "timeout_on_sleeping_server",
            Self::CustomMetadata => "custom_metadata",
            Self::StatusCodeAndMessage => "status_code_and_message",
            Self::SpecialStatusMessage => "special_status_message",
            Self::UnimplementedMethod => "unimplemented_method",
            Self::UnimplementedService => "unimplemented_service",
            Self::OrcaPerRpc => "orca_per_rpc",
            Self::OrcaOob => "orca_oob",
        }
    }

    /// The case named `name`, if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().chain(Self::ORCA).find(|case| case.name() == name)
    }

    /// Runs the case against `target`.
    ///
    /// # Errors
    /// [`Failed`], saying what the client saw that its asserts refuse.
    pub async fn run(self, target: &InteropTarget) -> Result<(), Failed> {
        match self {
            Self::ClientCompressedUnary => {
                return compressed::client_compressed_unary(&mut Raw::connect(target).await?).await;
            }
            Self::ServerCompressedUnary => {
                return compressed::server_compressed_unary(&mut Raw::connect(target).await?).await;
            }
            Self::ClientCompressedStreaming => {
                return compressed::client_compressed_streaming(&mut Raw::connect(target).await?).await;
            }
            Self::ServerCompressedStreaming => {
                return compressed::server_compressed_streaming(&mut Raw::connect(target).await?).await;
            }
            _ => {}
        }
        let channel = target.channel().await?;
        let mut client = TestServiceClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
        match self {
            Self::EmptyUnary => {
                client.empty_call(Empty {}).await?;
                Ok(())
            }
            Self::LargeUnary => calls::large_unary(&mut client).await,
            Self::ClientStreaming => calls::client_streaming(&mut client).await,
            Self::ServerStreaming => calls::server_streaming(&mut client).await,
            Self::PingPong => calls::ping_pong(&mut client).await,
            Self::EmptyStream => calls::empty_stream(&mut client).await,
            Self::CancelAfterBegin => calls::cancel_after_begin(&mut client).await,
            Self::CancelAfterFirstResponse => calls::cancel_after_first_response(&mut client).await,
            Self::TimeoutOnSleepingServer => calls::timeout_on_sleeping_server(&mut client).await,
            Self::CustomMetadata => calls::custom_metadata(&mut client).await,
            Self::StatusCodeAndMessage => calls::status_code_and_message(&mut client, "test status message").await,
            Self::SpecialStatusMessage => calls::special_status_message(&mut client).await,
            Self::UnimplementedMethod => {
                expect_code(client.unimplemented_call(Empty {}).await.map(drop), Code::Unimplemented)
            }
            Self::UnimplementedService => {
                let mut other = UnimplementedServiceClient::new(channel);
                expect_code(other.unimplemented_call(Empty {}).await.map(drop), Code::Unimplemented)
            }
            Self::OrcaPerRpc => orca::orca_per_rpc(&mut client).await,
            Self::OrcaOob => orca::orca_oob(&mut client, channel).await,
            Self::ClientCompressedUnary
            | Self::ServerCompressedUnary
            | Self::ClientCompressedStreaming
            | Self::ServerCompressedStreaming => unreachable!("run over the bare connection above"),
        }
    }
}
