// gRPC's interop test cases on @connectrpc/connect-node over gRPC-Web and
// the Connect protocol, against the Rust interop server. No generated
// code: the services come from the descriptor set `buf build` writes.
//
//   node interop-connect.mjs --descriptor FILE --base_url http://localhost:P
//        --protocol grpc-web|connect --http 1.1|2 [--json] [--ca_file CA] --test_case large_unary[,...]
//
// (an https:// base URL with --ca_file for TLS).
//
// Prints one JSON line per case, as interop-client.mjs does; exits 1 if any
// failed. Which cases each transport can carry is the cross tests' table
// (peers/test_cases.py); a case's steps that need a stream the
// transport cannot carry are left out there too.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, decodeBinaryHeader, encodeBinaryHeader } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  ANSWER_SIZES,
  BEGUN_MS,
  ECHO_INITIAL,
  ECHO_TRAILING,
  Failed,
  REQUEST_SIZE,
  RESPONSE_SIZE,
  SPECIAL_MESSAGE,
  STREAM_SIZES,
  check,
  checkPayload,
  runCases,
  sleep,
} from "./interop-common.mjs";

const { values: flags } = parseArgs({
  options: {
    descriptor: { type: "string" },
    base_url: { type: "string" },
    protocol: { type: "string" },
    http: { type: "string" },
    json: { type: "boolean", default: false },
    ca_file: { type: "string" },
    test_case: { type: "string" },
  },
});

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(flags.descriptor)));
const testService = registry.getService("grpc.testing.TestService");
const unimplementedService = registry.getService("grpc.testing.UnimplementedService");

const bidi = flags.http === "2";

function transport(compressed = false) {
  const options = { baseUrl: flags.base_url, httpVersion: flags.http, useBinaryFormat: !flags.json };
  if (flags.ca_file) options.nodeOptions = { ca: readFileSync(flags.ca_file) };
  if (compressed) Object.assign(options, { sendCompression: compressionGzip, compressMinBytes: 0 });
  return flags.protocol === "grpc-web" ? createGrpcWebTransport(options) : createConnectTransport(options);
}
const client = (compressed = false, service = testService) => createClient(service, transport(compressed));

const zeros = (size) => ({ body: new Uint8Array(size) });

async function expectCode(promise, code, message) {
  try {
    await promise;
  } catch (err) {
    const error = ConnectError.from(err);
    check(error.code === code, `expected ${Code[code]}, got ${Code[error.code]}: ${error.rawMessage}`);
    if (message !== undefined) {
      check(error.rawMessage === message, `expected ${JSON.stringify(message)}, got ${JSON.stringify(error.rawMessage)}`);
    }
    return;
  }
  throw new Failed(`expected ${Code[code]}, got OK`);
}

async function* messages(list) {
  for (const message of list) yield message;
}

/** A request stream the case feeds as it goes, until closed. */
function pipe() {
  const queue = [];
  let wake = null;
  let closed = false;
  return {
    add(message) {
      queue.push(message);
      if (wake) wake();
    },
    close() {
      closed = true;
      if (wake) wake();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length) yield queue.shift();
        else if (closed) return;
        else await new Promise((resolve) => (wake = resolve));
      }
    },
  };
}

const largeRequest = (extra = {}) => ({ responseSize: RESPONSE_SIZE, payload: zeros(REQUEST_SIZE), ...extra });

const CASES = {
  async empty_unary() {
    await client().emptyCall({});
  },
  async large_unary() {
    checkPayload((await client().unaryCall(largeRequest())).payload, RESPONSE_SIZE);
  },
  async client_compressed_unary() {
    const expect = (value) => largeRequest({ expectCompressed: { value } });
    await expectCode(client().unaryCall(expect(true)), Code.InvalidArgument);
    checkPayload((await client(true).unaryCall(expect(true))).payload, RESPONSE_SIZE);
    checkPayload((await client().unaryCall(expect(false))).payload, RESPONSE_SIZE);
  },
  async client_streaming() {
    const answer = await client().streamingInputCall(messages(STREAM_SIZES.map((size) => ({ payload: zeros(size) }))));
    check(answer.aggregatedPayloadSize === 74_922, `aggregated ${answer.aggregatedPayloadSize}`);
  },
  async server_streaming() {
    const sizes = [];
    for await (const answer of client().streamingOutputCall({ responseParameters: ANSWER_SIZES.map((size) => ({ size })) })) {
      sizes.push(answer.payload.body.length);
    }
    check(JSON.stringify(sizes) === JSON.stringify(ANSWER_SIZES), `answers of ${sizes} bytes`);
  },
  async ping_pong() {
    const requests = pipe();
    const answers = client().fullDuplexCall(requests)[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) {
      requests.add({ responseParameters: [{ size: ANSWER_SIZES[i] }], payload: zeros(STREAM_SIZES[i]) });
      const { value, done } = await answers.next();
      check(!done, "the answers ended early");
      checkPayload(value.payload, ANSWER_SIZES[i]);
    }
    requests.close();
    check((await answers.next()).done, "an answer more than the four asked for");
  },
  async empty_stream() {
    let count = 0;
    for await (const _ of client().fullDuplexCall(messages([]))) count++;
    check(count === 0, `${count} answers to none`);
  },
  async cancel_after_begin() {
    const abort = new AbortController();
    const call = client().streamingInputCall(pipe(), { signal: abort.signal });
    await sleep(BEGUN_MS);
    abort.abort();
    await expectCode(call, Code.Canceled);
  },
  async cancel_after_first_response() {
    const abort = new AbortController();
    const requests = pipe();
    const answers = client().fullDuplexCall(requests, { signal: abort.signal })[Symbol.asyncIterator]();
    requests.add({ responseParameters: [{ size: 31_415 }], payload: zeros(27_182) });
    checkPayload((await answers.next()).value.payload, 31_415);
    abort.abort();
    await expectCode(answers.next(), Code.Canceled);
  },
  async timeout_on_sleeping_server() {
    const requests = pipe();
    requests.add({ payload: zeros(27_182) });
    const drain = async () => {
      for await (const _ of client().fullDuplexCall(requests, { timeoutMs: 1 }));
    };
    await expectCode(drain(), Code.DeadlineExceeded);
  },
  async custom_metadata() {
    const options = () => {
      const seen = {};
      return {
        seen,
        headers: {
          [ECHO_INITIAL]: "test_initial_metadata_value",
          [ECHO_TRAILING]: encodeBinaryHeader(new Uint8Array([0xab, 0xab, 0xab])),
        },
        onHeader: (headers) => (seen.headers = headers),
        onTrailer: (trailers) => (seen.trailers = trailers),
      };
    };
    const echoed = ({ headers, trailers }) => {
      check(headers && headers.get(ECHO_INITIAL) === "test_initial_metadata_value", "no initial echo");
      const trailing = trailers && trailers.get(ECHO_TRAILING);
      check(trailing && decodeBinaryHeader(trailing).join() === "171,171,171", `trailing echo ${trailing}`);
    };
    const single = options();
    checkPayload((await client().unaryCall(largeRequest(), single)).payload, RESPONSE_SIZE);
    echoed(single.seen);
    if (!bidi) return; // the bidirectional step needs HTTP/2
    const streamed = options();
    const request = { responseParameters: [{ size: RESPONSE_SIZE }], payload: zeros(REQUEST_SIZE) };
    const sizes = [];
    for await (const answer of client().fullDuplexCall(messages([request]), streamed)) sizes.push(answer.payload.body.length);
    check(sizes.length === 1 && sizes[0] === RESPONSE_SIZE, `answers of ${sizes} bytes`);
    echoed(streamed.seen);
  },
  async status_code_and_message(message = "test status message") {
    const responseStatus = { code: 2, message };
    await expectCode(client().unaryCall({ responseStatus }), Code.Unknown, message);
    if (!bidi) return; // the bidirectional step needs HTTP/2
    const drain = async () => {
      for await (const _ of client().fullDuplexCall(messages([{ responseStatus }])));
    };
    await expectCode(drain(), Code.Unknown, message);
  },
  async special_status_message() {
    await expectCode(client().unaryCall({ responseStatus: { code: 2, message: SPECIAL_MESSAGE } }), Code.Unknown, SPECIAL_MESSAGE);
  },
  async unimplemented_method() {
    await expectCode(client().unimplementedCall({}), Code.Unimplemented);
  },
  async unimplemented_service() {
    await expectCode(client(false, unimplementedService).unimplementedCall({}), Code.Unimplemented);
  },
};

await runCases(CASES, flags.test_case);
