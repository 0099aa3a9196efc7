//! One method per RPC of `search.v1.SearchService` (and the article's
//! `/Search/search`): each runs the call layer's one attempt loop, as a
//! unary or a streaming call, and hands back what the caller reads.

use tokio_stream::Stream;
use tonic::Code;
use tonic::transport::Channel;

use super::call::{Answered, Kind};
use super::responses::Responses;
use super::{Client, Error};
use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use crate::rpc::{CLASSIFY_PATH, COUNT_PATH, LEGACY_SEARCH_PATH, SCAN_PATH, SEARCH_PATH};

impl Client {
    /// Unary `Search`: does the query contain "banana"? The contract marks
    /// it side-effect free, so it is hedged (by default) and retried.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn search(&self, request: SearchRequest) -> Result<SearchResponse, Error> {
        let caller = &self.caller;
        let message = || Some(request.clone());
        let attempt = |channel, request| {
            let mut client = caller.grpc(channel);
            async move { client.search(request).await }
        };
        Ok(caller.call(SEARCH_PATH, Kind::Unary, message, attempt).await?.value.into_inner())
    }

    /// The article's unary `/Search/search` (wire-compatible with `Search`),
    /// to call the article's own Python server. The path is not in the
    /// contract, so the call is never hedged nor retried.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn search_legacy(&self, request: SearchRequest) -> Result<SearchResponse, Error> {
        let caller = &self.caller;
        let message = || Some(request.clone());
        let attempt = |channel, request| {
            let mut grpc = caller.generic(channel);
            async move {
                grpc.ready().await.map_err(|err| tonic::Status::from_error(err.into()))?;
                let path = http::uri::PathAndQuery::from_static(LEGACY_SEARCH_PATH);
                grpc.unary(request, path, tonic_prost::ProstCodec::default()).await
            }
        };
        Ok(caller.call(LEGACY_SEARCH_PATH, Kind::Unary, message, attempt).await?.value.into_inner())
    }

    /// Bidirectional `Classify`: one response per request, in order, read as
    /// they arrive while `requests` is still being sent. Never retried once
    /// the server has it.
    ///
    /// # Errors
    /// See [`Error`]; the responses end at the deadline with
    /// [`Error::DeadlineExceeded`].
    pub async fn classify(
        &self,
        requests: impl Stream<Item = ClassifyRequest> + Send + 'static,
    ) -> Result<Responses<ClassifyResponse>, Error> {
        let replay = self.caller.replay(requests);
        let attempt = |channel, request| {
            let mut client: SearchServiceClient<Channel> = self.caller.grpc(channel);
            async move { client.classify(request).await }
        };
        let answered = self.caller.call(CLASSIFY_PATH, Kind::Streaming, || replay.attempt(), attempt).await?;
        // Answered: the server has the call, which is never sent again.
        replay.commit();
        Ok(self.responses(answered))
    }

    /// Client-streaming `Count`: sends every request, then gets one summary.
    /// Never retried once the server has it.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn count(
        &self,
        requests: impl Stream<Item = CountRequest> + Send + 'static,
    ) -> Result<CountResponse, Error> {
        let replay = self.caller.replay(requests);
        let attempt = |channel, request| {
            let mut client = self.caller.grpc(channel);
            async move { client.count(request).await }
        };
        let answered = self.caller.call(COUNT_PATH, Kind::Streaming, || replay.attempt(), attempt).await?;
        answered.sub.outlier.success();
        if let Some(spans) = answered.spans {
            spans.end(Some(Code::Ok));
        }
        Ok(answered.value.into_inner())
    }

    /// Server-streaming `Scan`: the occurrences in one text, streamed as
    /// found. Never retried once the server has it.
    ///
    /// # Errors
    /// See [`Error`]; the responses end at the deadline with
    /// [`Error::DeadlineExceeded`].
    pub async fn scan(&self, request: ScanRequest) -> Result<Responses<ScanResponse>, Error> {
        let attempt = |channel, request| {
            let mut client = self.caller.grpc(channel);
            async move { client.scan(request).await }
        };
        let answered = self.caller.call(SCAN_PATH, Kind::Streaming, || Some(request.clone()), attempt).await?;
        Ok(self.responses(answered))
    }

    /// A streaming call's answers, as the caller reads them.
    fn responses<T>(&self, answered: Answered<tonic::Response<tonic::Streaming<T>>>) -> Responses<T> {
        let Answered { value, deadline, sub, spans, .. } = answered;
        Responses::new(value.into_inner(), deadline, std::sync::Arc::clone(&self.caller), sub, spans)
    }
}
