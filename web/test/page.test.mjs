// The page in a real browser: headless Chromium against real server
// processes, over Connect and gRPC-Web, HTTP/1.1 and HTTP/2 with TLS, from
// the server's origin and from another. Every case also checks that the
// page logged no error and no request failed (but the one refused by CORS
// on purpose). Run: `node --test web/test/` after `cargo build --bins`.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { certificate, launch, measure, openPage, root, startServer, startStatic } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Runs `body` with a server started with `flags` and a fresh page; checks the page stayed clean. */
async function withPage(flags, body, { expectProblems } = {}) {
  const server = await startServer(flags);
  const session = await openPage(browser);
  try {
    await body({ ...session, server });
    if (expectProblems) expectProblems(session.problems);
    else assert.deepEqual(session.problems, [], "console errors or failed requests");
  } finally {
    await session.close();
    await server.stop();
  }
}

/**
 * For a Scan the server ends with an error. connect-web stops reading at the
 * error's end-stream message and aborts its fetch, and Chromium may not yet
 * have marked the response complete, so it can report that one request as
 * aborted: that, and nothing else, may fail.
 */
const scanEndedByAnError = {
  expectProblems(problems) {
    assert.ok(problems.length <= 1, problems.join("\n"));
    for (const problem of problems) {
      assert.match(problem, /^failed: \S+\/search\.v1\.SearchService\/Scan net::ERR_ABORTED$/, problem);
    }
  },
};

/** `lines` lines, some with "banana" in mixed case after multi-byte text; and how many it holds. */
function bananaText(lines) {
  const pieces = ["café ", "日本語 ", "🍌 ", "naïve ", "", "Ω "];
  let count = 0;
  const out = [];
  for (let i = 0; i < lines; i++) {
    const prefix = pieces[i % pieces.length];
    if (i % 3 === 0) {
      out.push(`${prefix}line ${i}: a BaNaNa and a banana split`);
      count += 2;
    } else if (i % 3 === 1) {
      out.push(`${prefix}line ${i}: bananas${prefix}`);
      count += 1;
    } else {
      out.push(`${prefix}line ${i}: ban ana, no match`);
    }
  }
  return { text: out.join("\n"), count };
}

/**
 * Puts `text` in the text area as a paste does, in one input event
 * (playwright's fill types a long text in far more slowly).
 */
function paste(page, text) {
  return page.$eval(
    "#text",
    (area, value) => {
      area.value = value;
      area.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertFromPaste" }));
    },
    text,
  );
}

/** Pastes `text` and waits for the Scan to finish; the marks' texts. */
async function scan(page, text) {
  await paste(page, text);
  await page.waitForFunction(() => /^\d+ match/.test(document.getElementById("scan-status").textContent), null, {
    timeout: 30_000,
  });
  return page.$$eval("#marked mark", (marks) => marks.map((mark) => mark.textContent));
}

test("Search over Connect GET answers as the user types, and the URL follows", async () => {
  await withPage([], async ({ page, server, requests }) => {
    await page.goto(`${server.url}/`);
    await page.fill("#query", "Banana");
    await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
    await page.fill("#query", "Apple");
    await page.waitForFunction(() => document.getElementById("answer").textContent === "status=0");
    assert.equal(new URL(page.url()).searchParams.get("q"), "Apple");
    const searches = requests.filter((request) => request.url().includes("/search.v1.SearchService/Search"));
    assert.ok(searches.length >= 2);
    assert.ok(searches.every((request) => request.method() === "GET"), "Search is asked with GET");
    // An emptied box asks nothing and shows nothing, and leaves the URL.
    await page.fill("#query", "");
    await page.waitForFunction(() => document.getElementById("answer").textContent === "");
    assert.equal(new URL(page.url()).search, "");
    assert.equal(await page.getAttribute("#answer", "aria-live"), "polite");
    assert.equal(await page.textContent("label[for=query]"), "Query");
  });
});

test("a shared link /?q=Banana fills the box and answers status=1; the load is small", async () => {
  await withPage([], async ({ page, server }) => {
    await page.goto(`${server.url}/?q=Banana`);
    await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
    assert.equal(await page.inputValue("#query"), "Banana");
    const load = await measure(page);
    console.log(
      `page load over HTTP/1.1: ${load.transferred} bytes transferred (${load.files.join(", ")}); ` +
        `first answer on screen ${load.firstAnswerMs?.toFixed(1)} ms after navigation started`,
    );
    assert.ok(load.firstAnswerMs > 0, "the first answer's time is measured");
    assert.ok(load.transferred > 0 && load.transferred < 100_000, `${load.transferred} bytes`);
    assert.deepEqual(load.protocols, ["http/1.1"]);

    // Again: the page is revalidated, its versioned files come from the cache.
    await page.goto(`${server.url}/?q=Banana`);
    await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
    const again = await measure(page);
    console.log(
      `loaded again: ${again.transferred} bytes transferred (${again.files.join(", ")}); ` +
        `first answer on screen ${again.firstAnswerMs?.toFixed(1)} ms after navigation started`,
    );
    const cached = await page.evaluate(() =>
      performance
        .getEntriesByType("resource")
        .filter((entry) => /\/app\.(js|css)$/.test(new URL(entry.name).pathname))
        .map((entry) => entry.transferSize),
    );
    assert.deepEqual(cached, [0, 0], "app.js and app.css are not asked for again");
  });
});

test("Scan highlights every match of a 10,000-line text, non-ASCII included", async () => {
  await withPage([], async ({ page, server }) => {
    await page.goto(`${server.url}/`);
    const { text, count } = bananaText(10_000);
    const marks = await scan(page, text);
    assert.equal(marks.length, count);
    assert.ok(marks.every((mark) => mark.toLowerCase() === "banana"), "each mark covers exactly a banana");
    // The highlighted copy is the text itself, nothing lost or moved.
    assert.equal(await page.textContent("#marked"), text);
    const status = await page.textContent("#scan-status");
    assert.equal(status, `${count} matches on ${Math.ceil((2 * 10_000) / 3)} lines`);
    console.log(`scan of ${text.length} UTF-16 units (${Buffer.byteLength(text)} bytes): ${status}`);
  });
});

test("gRPC-Web: Search and Scan through createGrpcWebTransport", async () => {
  await withPage([], async ({ page, server, requests }) => {
    await page.goto(`${server.url}/?transport=grpc-web&q=banana%20bread`);
    await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
    const marks = await scan(page, "Ünïcödé BANANA\nno\n🍌🍌 banana");
    assert.deepEqual(marks, ["BANANA", "banana"]);
    const calls = requests.filter((request) => request.url().includes("/search.v1.SearchService/"));
    assert.ok(calls.length >= 2);
    for (const call of calls) {
      assert.equal(call.method(), "POST");
      assert.equal(call.headers()["content-type"], "application/grpc-web+proto");
    }
  });
});

test("over HTTP/2 with TLS", async () => {
  const { cert, key, remove } = certificate();
  try {
    await withPage(["--tls-cert", cert, "--tls-key", key], async ({ page, server }) => {
      await page.goto(`${server.url}/?q=Banana`);
      await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
      assert.deepEqual(await scan(page, "a banana"), ["banana"]);
      const load = await measure(page);
      assert.deepEqual(load.protocols, ["h2"], "every request went over HTTP/2");
      console.log(
        `page load over HTTP/2 and TLS: ${load.transferred} bytes transferred (${load.files.join(", ")}); ` +
          `first answer on screen ${load.firstAnswerMs?.toFixed(1)} ms after navigation started`,
      );
    });
  } finally {
    remove();
  }
});

test("an oversized text gets the server's limit, named", async () => {
  await withPage(["--max-recv-bytes", "1KiB"], async ({ page, server }) => {
    await page.goto(`${server.url}/`);
    await paste(page, "banana ".repeat(300));
    await page.waitForFunction(() => document.getElementById("scan-error").textContent !== "");
    const error = await page.textContent("#scan-error");
    assert.match(error, /^RESOURCE_EXHAUSTED: /);
    assert.match(error, /limit of 1024 bytes \(--max-recv-bytes\)/);
    assert.equal(await page.getAttribute("#scan-error", "role"), "alert");
  }, scanEndedByAnError);
});

test("a deadline exceeded is shown as such", async () => {
  // The server cuts every call at 1 ms; receiving half a megabyte alone takes longer.
  await withPage(["--default-timeout", "1ms", "--max-timeout", "1ms"], async ({ page, server }) => {
    await page.goto(`${server.url}/`);
    await paste(page, "a banana line\n".repeat(40_000));
    await page.waitForFunction(() => document.getElementById("scan-error").textContent !== "", null, {
      timeout: 30_000,
    });
    assert.match(await page.textContent("#scan-error"), /^DEADLINE_EXCEEDED: .*deadline of 1ms/);
  }, scanEndedByAnError);
});

test("from another origin: answered with --cors-origin, refused without", async () => {
  const site = await startStatic();
  try {
    await withPage(["--cors-origin", site.url], async ({ page, server }) => {
      await page.goto(`${site.url}/?api=${encodeURIComponent(server.url)}&q=Banana`);
      await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
      assert.deepEqual(await scan(page, "banana, Banana"), ["banana", "Banana"]);
    });
    await withPage(
      [],
      async ({ page, server }) => {
        await page.goto(`${site.url}/?api=${encodeURIComponent(server.url)}&q=Banana`);
        await page.waitForFunction(() => document.getElementById("search-error").textContent !== "");
        assert.equal(await page.textContent("#answer"), "");
        assert.match(await page.textContent("#search-error"), /^UNAVAILABLE: cannot reach .*--cors-origin/);
      },
      {
        // The browser itself reports the refusal; nothing else may fail.
        expectProblems(problems) {
          assert.ok(problems.length > 0);
          for (const problem of problems) {
            assert.match(problem, /CORS|ERR_FAILED/, problem);
          }
        },
      },
    );
  } finally {
    await site.stop();
  }
});

test("a screenshot of the page is not blank", async () => {
  await withPage([], async ({ page, server }) => {
    await page.goto(`${server.url}/?q=Banana%20bread`);
    await page.waitForFunction(() => document.getElementById("answer").textContent === "status=1");
    await scan(page, "Bananas are berries;\nan apple is not.\nBANANA bread, banana split.");
    const png = await page.screenshot({ fullPage: true });
    mkdirSync(join(root, "target/browser"), { recursive: true });
    const file = join(root, "target/browser/page.png");
    writeFileSync(file, png);
    // Decoded by the browser itself, on a blank page: count its colors.
    const blank = await page.context().newPage();
    const { colors, inked } = await blank.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext("2d");
      context.drawImage(bitmap, 0, 0);
      const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
      const seen = new Set();
      let inked = 0;
      for (let i = 0; i < data.length; i += 4) {
        seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        if (data[i] + data[i + 1] + data[i + 2] < 600) inked += 1;
      }
      return { colors: seen.size, inked: inked / (data.length / 4) };
    }, png.toString("base64"));
    console.log(`screenshot ${file}: ${colors} colors, ${(inked * 100).toFixed(1)}% of pixels inked`);
    assert.ok(colors > 50, `${colors} colors`);
    assert.ok(inked > 0.01, `${inked} inked`);
  });
});
