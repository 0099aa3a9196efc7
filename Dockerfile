# The Search server and client in a small image: built in Rust's image,
# run from a distroless base with the C runtime (the binaries link glibc
# only: TLS is rustls, the allocator mimalloc is compiled in) as a
# non-root user.
#
#   docker build -t search .
#   docker run --rm -p 8100:8100 search
#   docker run --rm --network host --entrypoint /usr/local/bin/client search Banana

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY gen gen
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bins

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/server /usr/local/bin/server
COPY --from=build /src/target/release/client /usr/local/bin/client
USER nonroot:nonroot
EXPOSE 8100 9100
ENTRYPOINT ["/usr/local/bin/server"]
CMD ["--listen=0.0.0.0:8100", "--metrics-listen=0.0.0.0:9100"]
