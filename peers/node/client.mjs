// Drives a Search server with connect-node's three transports (Connect,
// gRPC, gRPC-Web) over HTTP/1.1 and HTTP/2 where each allows, every RPC
// kind, JSON and binary, GET for Search, compression, and a few protocol
// details read with plain fetch. No generated code: the service comes from
// the descriptor set `buf build` writes.
//
//   node client.mjs --descriptor search.binpb --h1 http://127.0.0.1:P --h2 http://127.0.0.1:Q
//
// Prints one JSON document: {"cases": {name: observation}, "failures": [...]}.
// An observation is what the client saw (a value, or an error code); a
// failure is an observation that is not the answer the contract gives.
// Exits 1 when there are failures.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import http from "node:http";
import http2 from "node:http2";

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

const { values: flags } = parseArgs({
  options: {
    descriptor: { type: "string" },
    h1: { type: "string" },
    h2: { type: "string" },
    only: { type: "string" },
  },
});
if (!flags.descriptor || !flags.h1 || !flags.h2) {
  console.error("usage: node client.mjs --descriptor FILE --h1 URL --h2 URL [--only REGEX]");
  process.exit(2);
}

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(flags.descriptor)));
const service = registry.getService("search.v1.SearchService");
if (!service) throw new Error("search.v1.SearchService is not in the descriptor set");

// Python's `"banana" in s.lower()` for the ASCII queries used here.
const contains = (text) => (text.toLowerCase().includes("banana") ? 1 : 0);
const QUERIES = ["Banana", "Apple", "", "xxBANANAxx", "bananas!", "no"];

/** Every transport and HTTP version connect-node offers, with what it can carry. */
function transports() {
  const list = [];
  for (const [version, baseUrl] of [["1.1", flags.h1], ["2", flags.h2]]) {
    const bidi = version === "2";
    for (const binary of [false, true]) {
      const format = binary ? "proto" : "json";
      list.push({
        name: `connect h${version} ${format}`,
        bidi,
        transport: createConnectTransport({ baseUrl, httpVersion: version, useBinaryFormat: binary }),
      });
    }
    list.push({
      name: `connect h${version} json GET`,
      bidi,
      get: true,
      transport: createConnectTransport({ baseUrl, httpVersion: version, useHttpGet: true }),
    });
    list.push({
      name: `connect h${version} proto gzip`,
      bidi,
      transport: createConnectTransport({
        baseUrl,
        httpVersion: version,
        useBinaryFormat: true,
        sendCompression: compressionGzip,
        acceptCompression: [compressionGzip],
        compressMinBytes: 1,
      }),
    });
    list.push({
      name: `grpc-web h${version}`,
      bidi: false, // gRPC-Web has no client or bidirectional streams
      clientStreams: false,
      transport: createGrpcWebTransport({ baseUrl, httpVersion: version }),
    });
  }
  // gRPC is HTTP/2 only.
  list.push({ name: "grpc h2", bidi: true, transport: createGrpcTransport({ baseUrl: flags.h2 }) });
  list.push({
    name: "grpc h2 gzip",
    bidi: true,
    transport: createGrpcTransport({
      baseUrl: flags.h2,
      sendCompression: compressionGzip,
      acceptCompression: [compressionGzip],
      compressMinBytes: 1,
    }),
  });
  return list;
}

/** The error code of a failed call, as Connect names it. */
function codeOf(err) {
  const error = ConnectError.from(err);
  return Code[error.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());
}

async function* batches(list) {
  for (const queries of list) yield { queries };
}

/** The calls made on every transport: name -> [run, expected]. */
function calls(client, transport) {
  const scanText = "banana\nxx BANANA\n" + "banana ".repeat(300);
  const scanExpected = [["1", "1", "0"], ["2", "4", "10"]];
  for (let i = 0; i < 300; i++) scanExpected.push(["3", String(1 + 7 * i), String(17 + 7 * i)]);
  const list = {
    search: [
      async () => Promise.all(QUERIES.map(async (query) => (await client.search({ query })).status)),
      QUERIES.map(contains),
    ],
    "scan (server stream)": [
      async () => {
        const found = [];
        for await (const answer of client.scan({ text: scanText })) {
          for (const m of answer.matches) found.push([String(m.line), String(m.column), String(m.offset)]);
        }
        return found;
      },
      scanExpected,
    ],
    // A GET's message is in its URL, bounded by the HTTP header limits
    // instead: this case is for the transports that POST.
    ...(transport.get ? {} : { "search over the limit": [
      async () => {
        try {
          await client.search({ query: "b".repeat(5 << 20) });
          return "ok";
        } catch (err) {
          return codeOf(err);
        }
      },
      "resource_exhausted",
    ] }),
  };
  if (transport.clientStreams !== false) {
    list["count (client stream)"] = [
      async () => {
        const summary = await client.count(batches([QUERIES.slice(0, 3), [], QUERIES.slice(3)]));
        return [String(summary.queries), String(summary.matches)];
      },
      [String(QUERIES.length), String(QUERIES.map(contains).reduce((a, b) => a + b))],
    ];
  }
  if (transport.bidi) {
    list["classify (bidi)"] = [
      async () => {
        const answers = [];
        for await (const answer of client.classify(batches([QUERIES.slice(0, 2), QUERIES.slice(2)]))) {
          answers.push([String(answer.firstIndex), ...answer.statuses]);
        }
        return answers;
      },
      [["0", ...QUERIES.slice(0, 2).map(contains)], ["2", ...QUERIES.slice(2).map(contains)]],
    ];
  }
  return list;
}

/** One raw request (HTTP/1.1 through node:http, HTTP/2 through node:http2). */
function raw(base, version, method, path, headers, body) {
  const url = new URL(path, base);
  if (version === "2") {
    return new Promise((resolve, reject) => {
      const session = http2.connect(url.origin);
      session.on("error", reject);
      const stream = session.request({ ":method": method, ":path": url.pathname + url.search, ...headers });
      const chunks = [];
      let head = {};
      stream.on("response", (h) => (head = h));
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        session.close();
        resolve({ status: head[":status"], headers: head, body: Buffer.concat(chunks).toString() });
      });
      stream.on("error", reject);
      stream.end(body ?? undefined);
    });
  }
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent: false }, (response) => {
      const chunks = [];
      response.on("data", (c) => chunks.push(c));
      response.on("end", () =>
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    request.on("error", reject);
    request.end(body ?? undefined);
  });
}

/** What a raw answer shows: the status, the header named, the Connect code. */
function seen(answer, header) {
  let code = null;
  try {
    code = JSON.parse(answer.body).code ?? null;
  } catch {
    // not JSON: no code to read
  }
  return { status: answer.status, [header ?? "code"]: header ? answer.headers[header] ?? null : code, code };
}

/** Protocol details, as connect-go answers them; both servers must agree. */
function probes() {
  const json = { "content-type": "application/json" };
  const search = "/search.v1.SearchService/Search";
  return {
    "probe unknown method": [() => raw(flags.h1, "1.1", "POST", "/search.v1.SearchService/Nope", json, "{}"), (a) => seen(a)],
    "probe bidi over HTTP/1.1": [
      () => raw(flags.h1, "1.1", "POST", "/search.v1.SearchService/Classify", { "content-type": "application/connect+json" }, ""),
      (a) => ({ status: a.status }),
    ],
    "probe GET on a method with side effects": [
      () => raw(flags.h1, "1.1", "GET", "/search.v1.SearchService/Count?encoding=json&message=%7B%7D", {}, null),
      (a) => seen(a, "allow"),
    ],
    "probe PUT": [() => raw(flags.h1, "1.1", "PUT", search, json, "{}"), (a) => seen(a, "allow")],
    "probe wrong content type": [
      () => raw(flags.h1, "1.1", "POST", search, { "content-type": "text/plain" }, "{}"),
      (a) => seen(a, "accept-post"),
    ],
    "probe JSON that does not parse": [() => raw(flags.h1, "1.1", "POST", search, json, '{"query":'), (a) => seen(a)],
    "probe unknown fields": [() => raw(flags.h1, "1.1", "POST", search, json, '{"query":"banana","x":1}'), (a) => seen(a)],
    "probe unknown compression": [
      () => raw(flags.h1, "1.1", "POST", search, { ...json, "content-encoding": "br" }, "{}"),
      (a) => seen(a),
    ],
    "probe GET over HTTP/2": [
      () => raw(flags.h2, "2", "GET", `${search}?connect=v1&encoding=json&message=%7B%22query%22%3A%22Banana%22%7D`, {}, null),
      (a) => ({ status: a.status, body: a.body.replace(/\s/g, "") }),
    ],
  };
}

const only = flags.only ? new RegExp(flags.only) : null;
const cases = {};
const failures = [];
for (const transport of transports()) {
  const client = createClient(service, transport.transport);
  for (const [call, [run, expected]] of Object.entries(calls(client, transport))) {
    const name = `${transport.name}: ${call}`;
    if (only && !only.test(name)) continue;
    let observed;
    try {
      observed = await run();
    } catch (err) {
      observed = { error: codeOf(err), message: ConnectError.from(err).rawMessage };
    }
    cases[name] = observed;
    if (JSON.stringify(observed) !== JSON.stringify(expected)) failures.push({ name, observed, expected });
  }
}
for (const [name, [run, view]] of Object.entries(probes())) {
  if (only && !only.test(name)) continue;
  try {
    cases[name] = view(await run());
  } catch (err) {
    cases[name] = { error: String(err) };
  }
}
// Exit once the whole report is written: a pipe takes it in pieces, and
// connect-node's open HTTP/2 sessions would otherwise keep node running.
process.stdout.write(`${JSON.stringify({ cases, failures })}\n`, () => process.exit(failures.length ? 1 : 0));
