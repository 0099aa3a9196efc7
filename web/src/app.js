// The Search page: a query answered as it is typed (Search, over GET), and a
// text whose matches are highlighted as Scan streams them, through the
// client connect-web builds from the contract's generated descriptors.
//
// Query parameters: `q` (the query, kept in the URL as it is typed, so that
// a link shares it), `transport=grpc-web` (gRPC-Web instead of Connect) and
// `api` (the server's URL, when the page is served from another origin).

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { SearchService } from "./gen/search/v1/search_pb.js";

const params = new URLSearchParams(location.search);
const api = params.get("api") || location.origin;
const grpcWeb = params.get("transport") === "grpc-web";

// Search is marked NO_SIDE_EFFECTS in the contract, so Connect may ask for
// it with GET (gRPC-Web has no GET: every call is a POST there).
const transport = grpcWeb
  ? createGrpcWebTransport({ baseUrl: api, useBinaryFormat: true })
  : createConnectTransport({ baseUrl: api, useBinaryFormat: true, useHttpGet: true });
const client = createClient(SearchService, transport);

const $ = (id) => document.getElementById(id);
const query = $("query");
const answer = $("answer");
const searchError = $("search-error");
const text = $("text");
const scanStatus = $("scan-status");
const scanError = $("scan-error");
const marked = $("marked");

$("via").textContent = `${grpcWeb ? "gRPC-Web" : "Connect (Search with GET)"} to ${api}`;

/** An error as the command-line client prints it: `CODE: message`. */
function describe(err) {
  const error = ConnectError.from(err);
  const name = Code[error.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  if (error.code === Code.Unknown && error.cause instanceof TypeError) {
    // fetch says no more than this of a refused connection or a CORS refusal.
    return `UNAVAILABLE: cannot reach ${api} (${error.rawMessage}): is the server running, and does it allow this origin (--cors-origin)?`;
  }
  return `${name}: ${error.rawMessage}`;
}

// Answers may come back out of order: only the latest query's is shown.
let asked = 0;
let answered = false;

async function search() {
  const id = ++asked;
  const q = query.value;
  const url = new URL(location.href);
  if (q) url.searchParams.set("q", q);
  else url.searchParams.delete("q");
  history.replaceState(null, "", url);
  if (!q) {
    answer.textContent = "";
    searchError.textContent = "";
    return;
  }
  try {
    const response = await client.search({ query: q });
    if (id !== asked) return;
    answer.textContent = `status=${response.status}`;
    searchError.textContent = "";
    if (!answered) {
      answered = true;
      performance.mark("first-answer");
    }
  } catch (err) {
    if (id !== asked) return;
    answer.textContent = "";
    searchError.textContent = describe(err);
  }
}

/**
 * Maps UTF-8 byte offsets into `s` (what the server counts) to UTF-16
 * indexes (what JavaScript strings count), for offsets that only grow. A
 * lone surrogate is sent as U+FFFD, three bytes.
 */
function utf16Index(s) {
  let unit = 0;
  let byte = 0;
  return (target) => {
    while (byte < target && unit < s.length) {
      const c = s.charCodeAt(unit);
      if (c < 0x80) {
        byte += 1;
        unit += 1;
      } else if (c < 0x800) {
        byte += 2;
        unit += 1;
      } else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(unit + 1) & 0xfc00) === 0xdc00) {
        byte += 4;
        unit += 2;
      } else {
        byte += 3;
        unit += 1;
      }
    }
    return unit;
  };
}

/** "banana" is six ASCII bytes, so six UTF-16 units too. */
const WORD = 6;

let scanning;

async function scan() {
  scanning?.abort();
  const controller = new AbortController();
  scanning = controller;
  const s = text.value;
  const index = utf16Index(s);
  const lines = new Set();
  let matches = 0;
  let shown = 0;
  marked.replaceChildren();
  scanError.textContent = "";
  scanStatus.textContent = s ? "Scanning…" : "";
  if (!s) return;
  try {
    for await (const response of client.scan({ text: s }, { signal: controller.signal })) {
      const part = document.createDocumentFragment();
      for (const match of response.matches) {
        const start = index(Number(match.offset));
        part.append(s.slice(shown, start));
        const mark = document.createElement("mark");
        mark.textContent = s.slice(start, start + WORD);
        part.append(mark);
        shown = start + WORD;
        matches += 1;
        lines.add(match.line);
      }
      marked.append(part);
      scanStatus.textContent = `Scanning… ${matches} so far`;
    }
    marked.append(s.slice(shown));
    const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
    scanStatus.textContent = `${plural(matches, "match", "matches")} on ${plural(lines.size, "line", "lines")}`;
  } catch (err) {
    if (controller.signal.aborted) return;
    marked.append(s.slice(shown));
    scanStatus.textContent = `${matches} matches before the error`;
    scanError.textContent = describe(err);
  }
}

/** Runs `f` once input has paused for `ms`. */
function debounce(f, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(f, ms);
  };
}

query.addEventListener("input", search);
text.addEventListener("input", debounce(scan, 150));

const shared = params.get("q");
if (shared !== null) {
  query.value = shared;
  search();
}
