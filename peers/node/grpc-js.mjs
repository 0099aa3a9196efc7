// @grpc/grpc-js against a Search server, every RPC kind, with the channel's
// compression set the way grpc-js users set it
// (`grpc.default_compression_algorithm`: 0 none, 1 deflate, 2 gzip).
//
//   node grpc-js.mjs --proto ../../proto --target 127.0.0.1:PORT
//
// Prints one JSON line per compression with what came back, and exits 1 if
// any answer is not the contract's.

import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const { values: flags } = parseArgs({ options: { proto: { type: "string" }, target: { type: "string" } } });
const definition = protoLoader.loadSync("search/v1/search.proto", {
  includeDirs: [flags.proto],
  longs: String,
  defaults: true,
});
const { SearchService } = grpc.loadPackageDefinition(definition).search.v1;

const contains = (text) => (text.toLowerCase().includes("banana") ? 1 : 0);
const QUERIES = ["Banana", "Apple", "", "xxBANANAxx", "bananas!", "no"];
const deadline = () => new Date(Date.now() + 10_000);

const unary = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, { deadline: deadline() }, (err, answer) => (err ? reject(err) : resolve(answer))),
  );

const collect = (call) =>
  new Promise((resolve, reject) => {
    const answers = [];
    call.on("data", (answer) => answers.push(answer));
    call.on("end", () => resolve(answers));
    call.on("error", reject);
  });

async function run(algorithm) {
  const client = new SearchService(flags.target, grpc.credentials.createInsecure(), {
    "grpc.default_compression_algorithm": algorithm,
  });
  const search = await Promise.all(QUERIES.map(async (query) => (await unary(client, "Search", { query })).status));

  const text = "banana\nxx BANANA\n" + "banana ".repeat(300);
  const scanned = (await collect(client.Scan({ text }, { deadline: deadline() }))).flatMap((a) =>
    a.matches.map((m) => [m.line, m.column, m.offset]),
  );

  const count = await new Promise((resolve, reject) => {
    const call = client.Count({ deadline: deadline() }, (err, answer) => (err ? reject(err) : resolve(answer)));
    call.write({ queries: QUERIES.slice(0, 3) });
    call.write({ queries: QUERIES.slice(3) });
    call.end();
  });

  const classify = client.Classify({ deadline: deadline() });
  const answers = collect(classify);
  classify.write({ queries: QUERIES.slice(0, 2) });
  classify.write({ queries: QUERIES.slice(2) });
  classify.end();
  const classified = (await answers).map((a) => [a.firstIndex, ...a.statuses]);
  client.close();

  const expectedScan = [["1", "1", "0"], ["2", "4", "10"]];
  for (let i = 0; i < 300; i++) expectedScan.push(["3", String(1 + 7 * i), String(17 + 7 * i)]);
  const observed = { search, scanned: scanned.length, count: [count.queries, count.matches], classified };
  const expected = {
    search: QUERIES.map(contains),
    scanned: expectedScan.length,
    count: [String(QUERIES.length), String(QUERIES.map(contains).reduce((a, b) => a + b))],
    classified: [["0", ...QUERIES.slice(0, 2).map(contains)], ["2", ...QUERIES.slice(2).map(contains)]],
  };
  const scanOk = JSON.stringify(scanned) === JSON.stringify(expectedScan);
  const ok = scanOk && JSON.stringify(observed) === JSON.stringify(expected);
  return { algorithm, ok, observed, expected };
}

let failed = false;
for (const algorithm of [0, 1, 2]) {
  let result;
  try {
    result = await run(algorithm);
  } catch (err) {
    result = { algorithm, ok: false, error: `${err.code}: ${err.details ?? err.message}` };
  }
  failed ||= !result.ok;
  console.log(JSON.stringify(result));
}
process.exitCode = failed ? 1 : 0;
