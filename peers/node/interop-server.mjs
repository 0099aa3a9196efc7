// gRPC's interop TestService on @grpc/grpc-js: the server side of the cross
// tests, for the Rust interop client to run its cases against.
//
//   node interop-server.mjs --port 0 [--use_tls true --tls_cert_file F --tls_key_file K]
//
// Prints HOST:PORT once it listens; stops on SIGTERM. What grpc-js's server
// cannot do is left out, and the cross tests do not run the cases that need
// it: it never says whether a request message arrived compressed (no
// expect_compressed: client_compressed_unary, client_compressed_streaming),
// and it does not compress answers (no response_compressed:
// server_compressed_unary, server_compressed_streaming).

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const { values: flags } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "localhost" },
    use_tls: { type: "string", default: "false" },
    tls_cert_file: { type: "string" },
    tls_key_file: { type: "string" },
  },
});

const PROTO = fileURLToPath(new URL("../../proto", import.meta.url));
const definition = protoLoader.loadSync("grpc/testing/test.proto", { includeDirs: [PROTO], defaults: true });
const { TestService } = grpc.loadPackageDefinition(definition).grpc.testing;

const ECHO_INITIAL = "x-grpc-test-echo-initial";
const ECHO_TRAILING = "x-grpc-test-echo-trailing-bin";

/** Echo Metadata: the initial value now, the binary one in the trailers returned. */
function echo(call) {
  const initial = call.metadata.get(ECHO_INITIAL);
  if (initial.length) {
    const headers = new grpc.Metadata();
    headers.set(ECHO_INITIAL, initial[0]);
    call.sendMetadata(headers);
  }
  const trailers = new grpc.Metadata();
  const trailing = call.metadata.get(ECHO_TRAILING);
  if (trailing.length) trailers.set(ECHO_TRAILING, trailing[0]);
  return trailers;
}

/** Echo Status: the error the request asks to end with, if any. */
function statusOf(request, trailers) {
  const status = request.responseStatus;
  if (!status || !status.code) return null;
  return { code: status.code, details: status.message, metadata: trailers };
}

const payload = (size) => ({ type: "COMPRESSABLE", body: Buffer.alloc(size) });
const sleep = (us) => new Promise((resolve) => setTimeout(resolve, us / 1000));

/** The answers of one request, written in order; an error to end with, if any. */
async function answer(call, request, trailers) {
  const failed = statusOf(request, trailers);
  if (failed) return failed;
  for (const parameters of request.responseParameters) {
    if (parameters.intervalUs) await sleep(parameters.intervalUs);
    if (call.cancelled) return null;
    call.write({ payload: payload(parameters.size) });
  }
  return null;
}

/** Ends a streaming call: OK with the trailers, or the error. */
function finish(call, failed, trailers) {
  if (failed) call.emit("error", failed);
  else call.end(trailers);
}

const service = {
  EmptyCall: (call, callback) => callback(null, {}),
  UnaryCall(call, callback) {
    const trailers = echo(call);
    const failed = statusOf(call.request, trailers);
    if (failed) return callback(failed);
    callback(null, { payload: payload(call.request.responseSize) }, trailers);
  },
  CacheableUnaryCall(call, callback) {
    callback(null, { payload: payload(call.request.responseSize) });
  },
  async StreamingOutputCall(call) {
    const trailers = echo(call);
    finish(call, await answer(call, call.request, trailers), trailers);
  },
  StreamingInputCall(call, callback) {
    const trailers = echo(call);
    let size = 0;
    call.on("data", (request) => (size += request.payload ? request.payload.body.length : 0));
    call.on("end", () => callback(null, { aggregatedPayloadSize: size }, trailers));
    call.on("error", () => {});
  },
  FullDuplexCall(call) {
    const trailers = echo(call);
    // Each request answered as it comes, in order.
    let queue = Promise.resolve(null);
    call.on("data", (request) => {
      queue = queue.then((failed) => failed || answer(call, request, trailers));
    });
    call.on("end", () => queue.then((failed) => finish(call, failed, trailers)));
    call.on("error", () => {});
  },
  HalfDuplexCall(call) {
    const trailers = echo(call);
    const requests = [];
    call.on("data", (request) => requests.push(request));
    call.on("end", async () => {
      let failed = null;
      for (const request of requests) if (!failed) failed = await answer(call, request, trailers);
      finish(call, failed, trailers);
    });
    call.on("error", () => {});
  },
  // UnimplementedCall is left out: grpc-js answers UNIMPLEMENTED.
};

const server = new grpc.Server();
server.addService(TestService.service, service);
const credentials =
  flags.use_tls === "true"
    ? grpc.ServerCredentials.createSsl(null, [
        { cert_chain: readFileSync(flags.tls_cert_file), private_key: readFileSync(flags.tls_key_file) },
      ])
    : grpc.ServerCredentials.createInsecure();
server.bindAsync(`${flags.host}:${flags.port}`, credentials, (err, port) => {
  if (err) {
    console.error(`interop-server: ${err.message}`);
    process.exit(1);
  }
  console.log(`${flags.host}:${port}`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
