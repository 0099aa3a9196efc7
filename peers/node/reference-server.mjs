// A reference Search server built with connect-node from the same
// descriptor set, serving Connect, gRPC and gRPC-Web as connect-node does:
// the other side of a differential test. The Rust server and this one get
// the same calls (client.mjs); where the protocols leave a choice to the
// server, the answers must still agree.
//
//   node reference-server.mjs --descriptor search.binpb
//
// Prints `h1=http://127.0.0.1:P h2=http://127.0.0.1:Q` once both listen
// (node's cleartext HTTP/2 server takes no HTTP/1.1, so two ports), and
// serves until SIGTERM.

import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { parseArgs } from "node:util";

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";

const { values: flags } = parseArgs({ options: { descriptor: { type: "string" } } });
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(flags.descriptor)));
const service = registry.getService("search.v1.SearchService");

// The rule, on ASCII text: the test's queries are ASCII, where JavaScript's
// and Python's lower-casing agree.
const status = (text) => (text.toLowerCase().includes("banana") ? 1 : 0);

const impl = {
  async search(request) {
    return { status: status(request.query) };
  },
  async *classify(requests) {
    let next = 0n;
    for await (const request of requests) {
      yield { firstIndex: next, statuses: request.queries.map(status) };
      next += BigInt(request.queries.length);
    }
  },
  async count(requests) {
    let queries = 0n;
    let matches = 0n;
    for await (const request of requests) {
      for (const query of request.queries) {
        queries += 1n;
        matches += BigInt(status(query));
      }
    }
    return { queries, matches };
  },
  async *scan(request) {
    // 1-based line and column, 0-based offset, lines split on "\n".
    const text = request.text.toLowerCase();
    const lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
    const matches = [];
    for (let at = text.indexOf("banana"); at !== -1; at = text.indexOf("banana", at + 1)) {
      let line = 0;
      while (line + 1 < lineStarts.length && lineStarts[line + 1] <= at) line++;
      matches.push({ line: BigInt(line + 1), column: BigInt(at - lineStarts[line] + 1), offset: BigInt(at) });
    }
    if (matches.length) yield { matches };
  },
};

const handler = connectNodeAdapter({
  routes: (router) => router.service(service, impl),
  readMaxBytes: 4 << 20,
  acceptCompression: [compressionGzip],
});
const listen = (server) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
const h1 = http.createServer(handler);
const h2 = http2.createServer(handler);
const [p1, p2] = await Promise.all([listen(h1), listen(h2)]);
console.log(`h1=http://127.0.0.1:${p1} h2=http://127.0.0.1:${p2}`);
process.on("SIGTERM", () => {
  h1.close();
  h2.close();
  process.exit(0);
});
