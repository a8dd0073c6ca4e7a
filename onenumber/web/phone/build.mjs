// Builds the web phone into dist/ (git-ignored): src/app.js and its imports (JsSIP included)
// bundled by esbuild into one script, next to the page and its stylesheet. No CDN, works offline.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/app.js'],
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  outfile: 'dist/phone.js',
  logLevel: 'warning',
});
for (const f of ['index.html', 'phone.css']) copyFileSync(`src/${f}`, `dist/${f}`);
console.log('web phone built into dist/');
