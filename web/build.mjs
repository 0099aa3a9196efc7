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
for (const file of ["index.html", "favicon.svg"]) {
  await copyFile(`${src}${file}`, `${dist}${file}`);
}
// The bundle also gzipped once, at the best level, for browsers that take
// gzip (all of them): the server sends these bytes as they are.
const bundle = await readFile(`${dist}app.js`);
await writeFile(`${dist}app.js.gz`, gzipSync(bundle, { level: 9 }));
