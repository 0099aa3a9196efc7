// What the Node interop clients share: the sizes and messages gRPC's cases
// use, how a case fails, and the loop that runs the cases named and prints
// one JSON line each ({"case": name, "ok": true}, or "ok": false with
// "why"), exiting 1 if any failed.

export const REQUEST_SIZE = 271_828;
export const RESPONSE_SIZE = 314_159;
export const STREAM_SIZES = [27_182, 8, 1_828, 45_904];
export const ANSWER_SIZES = [31_415, 9, 2_653, 58_979];
export const SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n";
export const ECHO_INITIAL = "x-grpc-test-echo-initial";
export const ECHO_TRAILING = "x-grpc-test-echo-trailing-bin";
// How long cancel_after_begin lets its call run: its headers reach the
// server first, which the cross tests check.
export const BEGUN_MS = 200;

export class Failed extends Error {}

export function check(ok, why) {
  if (!ok) throw new Failed(why);
}

/** A payload of `size` bytes is all zeros, or the case fails. */
export function checkPayload(payload, size) {
  const body = payload ? payload.body : new Uint8Array(0);
  check(body.length === size, `expected a payload of ${size} bytes, got ${body.length}`);
  check(body.every((byte) => byte === 0), "the payload is not all zeros");
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs each case of `names` (a comma-separated list) from `cases`, one after another. */
export async function runCases(cases, names) {
  let failed = false;
  for (const name of (names || "").split(",")) {
    const run = cases[name];
    try {
      if (!run) throw new Failed(`${name} is not run by this client`);
      await run();
      console.log(JSON.stringify({ case: name, ok: true }));
    } catch (err) {
      failed = true;
      console.log(JSON.stringify({ case: name, ok: false, why: err.message || String(err) }));
    }
  }
  process.exit(failed ? 1 : 0);
}
