// gRPC's interop test cases on @grpc/grpc-js: the client side of the cross
// tests, run against the Rust interop server.
//
//   node interop-client.mjs --server_port N --test_case large_unary[,ping_pong...] [--use_tls true --ca_file CA]
//
// Runs each case named, one after another, and prints one JSON line per
// case: {"case": name, "ok": true} or {"case": name, "ok": false, "why": ...}.
// Exits 1 if any failed. What grpc-js cannot do is left out: it never says
// whether an answer came compressed (no server_compressed_unary nor
// server_compressed_streaming). CASES lists what it runs.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
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
} from "./interop-common.mjs";

const { values: flags } = parseArgs({
  options: {
    server_host: { type: "string", default: "localhost" },
    server_port: { type: "string" },
    server_host_override: { type: "string" },
    test_case: { type: "string" },
    use_tls: { type: "string", default: "false" },
    use_test_ca: { type: "string", default: "false" },
    ca_file: { type: "string" },
  },
});

const PROTO = fileURLToPath(new URL("../../proto", import.meta.url));
const definition = protoLoader.loadSync("grpc/testing/test.proto", { includeDirs: [PROTO], defaults: true });
const { TestService, UnimplementedService } = grpc.loadPackageDefinition(definition).grpc.testing;

// grpc-js's write flag that sends one message uncompressed.
const NO_COMPRESS = 2;

const zeros = (size) => ({ body: Buffer.alloc(size) });
const deadline = () => new Date(Date.now() + 10_000);

function client(service = TestService, compression = 0) {
  const target = `${flags.server_host}:${flags.server_port}`;
  const options = { "grpc.default_compression_algorithm": compression };
  if (flags.server_host_override) options["grpc.ssl_target_name_override"] = flags.server_host_override;
  const credentials =
    flags.use_tls === "true"
      ? grpc.credentials.createSsl(flags.ca_file ? readFileSync(flags.ca_file) : null)
      : grpc.credentials.createInsecure();
  return new service(target, credentials, options);
}

/** A unary call's answer, headers and trailers, once both its answer and
 * its status have come (grpc-js may call back before the status event). */
const unary = (stub, method, request, metadata = new grpc.Metadata()) =>
  new Promise((resolve, reject) => {
    let headers = null;
    let answered = null;
    let trailers = null;
    const settle = () => answered && trailers && resolve({ answer: answered.answer, headers, trailers });
    const call = stub[method](request, metadata, { deadline: deadline() }, (err, answer) => {
      if (err) return reject(err);
      answered = { answer };
      settle();
    });
    call.on("metadata", (m) => (headers = m));
    call.on("status", (status) => {
      trailers = status.metadata;
      settle();
    });
  });

/** A streaming call's answers, headers and trailers, once it ends. */
const collect = (call) =>
  new Promise((resolve, reject) => {
    const answers = [];
    let headers = null;
    call.on("metadata", (m) => (headers = m));
    call.on("data", (answer) => answers.push(answer));
    call.on("status", (status) => {
      if (status.code === grpc.status.OK) resolve({ answers, headers, trailers: status.metadata });
    });
    call.on("error", reject);
  });

/** The next answer of a stream. */
const next = (call) =>
  new Promise((resolve, reject) => {
    const done = () => {
      call.off("data", onData);
      call.off("error", onError);
    };
    const onData = (answer) => {
      done();
      call.pause();
      resolve(answer);
    };
    const onError = (err) => {
      done();
      reject(err);
    };
    call.on("data", onData);
    call.on("error", onError);
    call.resume();
  });

async function expectCode(promise, code, message) {
  try {
    await promise;
  } catch (err) {
    check(err.code === code, `expected code ${code}, got ${err.code}: ${err.details}`);
    if (message !== undefined) check(err.details === message, `expected ${JSON.stringify(message)}, got ${JSON.stringify(err.details)}`);
    return;
  }
  throw new Failed(`expected code ${code}, got OK`);
}

const largeRequest = (extra = {}) => ({ responseSize: RESPONSE_SIZE, payload: zeros(REQUEST_SIZE), ...extra });

const CASES = {
  async empty_unary() {
    await unary(client(), "EmptyCall", {});
  },
  async large_unary() {
    checkPayload((await unary(client(), "UnaryCall", largeRequest())).answer.payload, RESPONSE_SIZE);
  },
  async client_compressed_unary() {
    const expect = (value) => largeRequest({ expectCompressed: { value } });
    await expectCode(unary(client(), "UnaryCall", expect(true)), grpc.status.INVALID_ARGUMENT);
    checkPayload((await unary(client(TestService, 2), "UnaryCall", expect(true))).answer.payload, RESPONSE_SIZE);
    checkPayload((await unary(client(), "UnaryCall", expect(false))).answer.payload, RESPONSE_SIZE);
  },
  async client_streaming() {
    const answer = await new Promise((resolve, reject) => {
      const call = client().StreamingInputCall({ deadline: deadline() }, (err, a) => (err ? reject(err) : resolve(a)));
      for (const size of STREAM_SIZES) call.write({ payload: zeros(size) });
      call.end();
    });
    check(answer.aggregatedPayloadSize === 74_922, `aggregated ${answer.aggregatedPayloadSize}`);
  },
  async client_compressed_streaming() {
    const stream = (messages) =>
      new Promise((resolve, reject) => {
        const call = client(TestService, 2).StreamingInputCall({ deadline: deadline() }, (err, a) =>
          err ? reject(err) : resolve(a),
        );
        for (const [message, compressed] of messages) call.write(message, compressed ? undefined : NO_COMPRESS);
        call.end();
      });
    const message = (value, size) => ({ payload: zeros(size), expectCompressed: { value } });
    await expectCode(stream([[message(true, 27_182), false]]), grpc.status.INVALID_ARGUMENT);
    const answer = await stream([[message(true, 27_182), true], [message(false, 45_904), false]]);
    check(answer.aggregatedPayloadSize === 73_086, `aggregated ${answer.aggregatedPayloadSize}`);
  },
  async server_streaming() {
    const request = { responseParameters: ANSWER_SIZES.map((size) => ({ size })) };
    const { answers } = await collect(client().StreamingOutputCall(request, { deadline: deadline() }));
    const sizes = answers.map((a) => a.payload.body.length);
    check(JSON.stringify(sizes) === JSON.stringify(ANSWER_SIZES), `answers of ${sizes} bytes`);
  },
  async ping_pong() {
    const call = client().FullDuplexCall({ deadline: deadline() });
    for (let i = 0; i < 4; i++) {
      call.write({ responseParameters: [{ size: ANSWER_SIZES[i] }], payload: zeros(STREAM_SIZES[i]) });
      checkPayload((await next(call)).payload, ANSWER_SIZES[i]);
    }
    call.end();
    const rest = await collect(call);
    check(rest.answers.length === 0, "an answer more than the four asked for");
  },
  async empty_stream() {
    const call = client().FullDuplexCall({ deadline: deadline() });
    call.end();
    const { answers } = await collect(call);
    check(answers.length === 0, `${answers.length} answers to none`);
  },
  async cancel_after_begin() {
    const ended = new Promise((resolve) => {
      const call = client().StreamingInputCall({ deadline: deadline() }, (err) => resolve(err));
      setTimeout(() => call.cancel(), BEGUN_MS);
    });
    const err = await ended;
    check(err && err.code === grpc.status.CANCELLED, `expected CANCELLED, got ${err && err.code}`);
  },
  async cancel_after_first_response() {
    const call = client().FullDuplexCall({ deadline: deadline() });
    const ended = new Promise((resolve) => call.on("error", resolve));
    call.write({ responseParameters: [{ size: 31_415 }], payload: zeros(27_182) });
    checkPayload((await next(call)).payload, 31_415);
    call.cancel();
    const err = await ended;
    check(err.code === grpc.status.CANCELLED, `expected CANCELLED, got ${err.code}`);
  },
  async timeout_on_sleeping_server() {
    const call = client().FullDuplexCall({ deadline: new Date(Date.now() + 1) });
    call.write({ payload: zeros(27_182) });
    await expectCode(collect(call), grpc.status.DEADLINE_EXCEEDED);
  },
  async custom_metadata() {
    const metadata = () => {
      const m = new grpc.Metadata();
      m.set(ECHO_INITIAL, "test_initial_metadata_value");
      m.set(ECHO_TRAILING, Buffer.from([0xab, 0xab, 0xab]));
      return m;
    };
    const echoed = ({ headers, trailers }) => {
      check(headers && headers.get(ECHO_INITIAL)[0] === "test_initial_metadata_value", "no initial echo");
      const trailing = trailers && trailers.get(ECHO_TRAILING)[0];
      check(Buffer.isBuffer(trailing) && trailing.equals(Buffer.from([0xab, 0xab, 0xab])), "no trailing echo");
    };
    const single = await unary(client(), "UnaryCall", largeRequest(), metadata());
    checkPayload(single.answer.payload, RESPONSE_SIZE);
    echoed(single);
    const call = client().FullDuplexCall(metadata(), { deadline: deadline() });
    call.write({ responseParameters: [{ size: RESPONSE_SIZE }], payload: zeros(REQUEST_SIZE) });
    call.end();
    const streamed = await collect(call);
    check(streamed.answers.length === 1, `${streamed.answers.length} answers`);
    checkPayload(streamed.answers[0].payload, RESPONSE_SIZE);
    echoed(streamed);
  },
  async status_code_and_message(message = "test status message") {
    const responseStatus = { code: 2, message };
    await expectCode(unary(client(), "UnaryCall", { responseStatus }), grpc.status.UNKNOWN, message);
    const call = client().FullDuplexCall({ deadline: deadline() });
    call.write({ responseStatus });
    call.end();
    await expectCode(collect(call), grpc.status.UNKNOWN, message);
  },
  async special_status_message() {
    const responseStatus = { code: 2, message: SPECIAL_MESSAGE };
    await expectCode(unary(client(), "UnaryCall", { responseStatus }), grpc.status.UNKNOWN, SPECIAL_MESSAGE);
  },
  async unimplemented_method() {
    await expectCode(unary(client(), "UnimplementedCall", {}), grpc.status.UNIMPLEMENTED);
  },
  async unimplemented_service() {
    await expectCode(unary(client(UnimplementedService), "UnimplementedCall", {}), grpc.status.UNIMPLEMENTED);
  },
};

await runCases(CASES, flags.test_case === "all" ? Object.keys(CASES).join(",") : flags.test_case);
