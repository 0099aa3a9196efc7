// What the browser tests start and stop: real server processes (the built
// `server` binary), a static server for the cross-origin page, a test
// certificate, and headless Chromium (Debian's, through playwright-core),
// each page watched for console errors and failed requests.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const root = new URL("../../", import.meta.url).pathname;
const dist = join(root, "web/dist");

/**
 * The server binary: SEARCH_SERVER, or the debug build in cargo's target
 * directory (`cargo metadata` follows CARGO_TARGET_DIR).
 */
const binary = process.env.SEARCH_SERVER ?? join(targetDir(), "debug/server");

function targetDir() {
  const metadata = execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: root });
  return JSON.parse(metadata).target_directory;
}

/**
 * Starts the server on a free port of 127.0.0.1 with `flags`; resolves once
 * it has printed the address it listens on (it binds before printing).
 */
export async function startServer(flags = []) {
  const child = spawn(binary, ["--listen", "127.0.0.1:0", ...flags], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before listening: ${stderr}`)));
  });
  const scheme = flags.includes("--tls-cert") ? "https" : "http";
  const port = line.trim().split(":").pop();
  return {
    url: `${scheme}://${flags.includes("--tls-cert") ? "localhost" : "127.0.0.1"}:${port}`,
    async stop() {
      if (child.exitCode !== null) throw new Error(`the server had exited: ${stderr}`);
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const code = await exited;
      if (code !== 0) throw new Error(`the server exited with ${code}: ${stderr}`);
    },
  };
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };

/** Serves web/dist/ on a free port of 127.0.0.1: another origin than the server's. */
export async function startStatic() {
  const server = createServer((request, response) => {
    const path = new URL(request.url, "http://x").pathname;
    const file = path === "/" ? "index.html" : path.slice(1);
    if (!(file in { "index.html": 1, "app.js": 1, "app.css": 1, "favicon.svg": 1 })) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": TYPES[extname(file)] });
    response.end(readFileSync(join(dist, file)));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A self-signed certificate for localhost, made by openssl: { cert, key } paths, and remove(). */
export function certificate() {
  const dir = mkdtempSync(join(tmpdir(), "search-web-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Headless Chromium: Debian's binary, with a fresh profile (playwright's own). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A new page in a fresh context, recording its console errors, uncaught
 * exceptions, failed requests and every request it makes.
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("requestfailed", (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on("request", (request) => requests.push(request));
  return { page, problems, requests, close: () => context.close(), ...options };
}

/** The page's load as it measured it: bytes transferred, and when its first answer showed. */
export function measure(page) {
  return page.evaluate(() => {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    const first = performance.getEntriesByName("first-answer")[0];
    return {
      transferred: entries.reduce((sum, entry) => sum + entry.transferSize, 0),
      protocols: [...new Set(entries.map((entry) => entry.nextHopProtocol))],
      firstAnswerMs: first?.startTime,
      // Each file: its path, bytes transferred, and when it had arrived (ms).
      files: entries.map(
        (entry) => `${new URL(entry.name).pathname} ${entry.transferSize} B at ${entry.responseEnd.toFixed(0)} ms`,
      ),
    };
  });
}
