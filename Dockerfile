# The Search server and client in a small image: stripped release binaries
# on a base with the C runtime, run as a non-root user (65532). The binaries
# link glibc and libgcc_s only (TLS is rustls, the allocator mimalloc is
# compiled in), so distroless's cc image is enough; nothing in the image
# writes to its root, so it runs read-only.
#
#   docker build -t search .
#   docker run --rm --read-only -p 8100:8100 -p 9100:9100 search
#   docker run --rm --network host --entrypoint /usr/local/bin/client search Banana
#   docker build --target debuginfo -o debug .   # debug/server.debug, client.debug
#
# Build arguments:
#   RUNTIME_BASE  the image the binaries run on (glibc and libgcc_s, a user 65532)
#   BINARIES      build: compile in the rust image (the default);
#                 prebuilt: take `server` and `client` from the build context,
#                 already stripped, linked against a glibc no newer than the
#                 base's (bookworm: 2.36).
# Only the chosen stage is built (BuildKit, buildah), so with prebuilt the
# rust image is never pulled. buildah 1.28 (Debian 12) finds the stage only
# when BINARIES is given: buildah bud --build-arg BINARIES=build -t search .
# More in docs/deploying.md; CI builds and runs it with deploy/image.sh and
# deploy/test_image.py.

ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARIES=build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY gen gen
# The web page the server carries in its binary (built, committed).
COPY web/dist web/dist
COPY benches benches
# The release profile keeps line tables (for profiling, and backtraces that
# name file and line): the image ships the binaries stripped, 42 MB -> 6.5 MB
# each, their debug info kept apart in /out/debug, where each binary's
# debuglink names it. `docker build --target debuginfo -o debug .` writes it
# out, for gdb or addr2line against the image's binaries.
RUN cargo build --release --locked --bins \
 && mkdir -p /out/bin /out/debug \
 && for bin in server client; do \
      objcopy --only-keep-debug "target/release/$bin" "/out/debug/$bin.debug" \
      && objcopy --strip-all --add-gnu-debuglink="/out/debug/$bin.debug" "target/release/$bin" "/out/bin/$bin"; \
    done

FROM scratch AS debuginfo
COPY --from=build /out/debug /

FROM scratch AS prebuilt
COPY server client /out/bin/

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_BASE}
COPY --from=binaries /out/bin/server /out/bin/client /usr/local/bin/
# Numeric, so that Kubernetes' runAsNonRoot can check it without the
# image's /etc/passwd (where the distroless base names it nonroot).
USER 65532:65532
EXPOSE 8100 9100
ENTRYPOINT ["/usr/local/bin/server"]
CMD ["--listen=0.0.0.0:8100", "--metrics-listen=0.0.0.0:9100"]
