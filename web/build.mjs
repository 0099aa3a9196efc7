// Bundles the page into dist/, which is committed and which the server
// includes in its binary: `npm run build --prefix web` (CI checks that dist/
// is exactly what this writes). esbuild's output depends only on its
// version, pinned in package.json, and on the sources.
import { build } from "esbuild";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";

const here = new URL(".", import.meta.url).pathname;
const src = `${here}src/`;
const dist = `${here}dist/`;

await rm(dist, { recursive: true, force: true });
await mkdir(dist);
await build({
  entryPoints: [`${src}app.js`, `${src}app.css`],
  outdir: dist,
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome111", "firefox111", "safari16.4"],
  legalComments: "none",
  logLevel: "warning",
});
await copyFile(`${src}favicon.svg`, `${dist}favicon.svg`);
// The page names each file with its version, `app.js?v=<hash>`, which the
// server answers as immutable: a new build is a new URL, so browsers keep
// the files for good and only ever revalidate the page itself. The hash is
// the server's too (FNV-1a, 64 bits: src/server/page.rs).
let page = await readFile(`${src}index.html`, "utf8");
for (const file of ["app.js", "app.css", "favicon.svg"]) {
  const version = fnv1a(await readFile(`${dist}${file}`));
  page = page.replace(`"${file}"`, `"${file}?v=${version}"`);
}
await writeFile(`${dist}index.html`, page);
// The bundle also gzipped once, at the best level, for browsers that take
// gzip (all of them): the server sends these bytes as they are.
const bundle = await readFile(`${dist}app.js`);
await writeFile(`${dist}app.js.gz`, gzipSync(bundle, { level: 9 }));

/** FNV-1a, 64 bits, in hex: the version of a file's bytes. */
function fnv1a(bytes) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  }
  return hash.toString(16).padStart(16, "0");
}
