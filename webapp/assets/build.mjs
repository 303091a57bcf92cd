// Bundles the front-end entry files in this folder into webapp/static/dist/ (minified).
// Run from the repository root: `npm run build`.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, '..', 'static', 'dist');
const entries = ['viewer', 'modeler', 'dmn', 'form', 'formeditor'];

const started = Date.now();
await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: entries.flatMap((name) => [join(here, `${name}.js`), join(here, `${name}.css`)]),
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'linked',
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file', '.png': 'file' },
  assetNames: 'assets/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const total = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`built ${Object.keys(result.metafile.outputs).length} files into webapp/static/dist/ `
  + `(${(total / 1024).toFixed(0)} KiB) in ${Date.now() - started} ms`);
