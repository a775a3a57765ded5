/* Build the pages' partial Plotly bundle (tools/plotly/panorama.js) into assets/vendor, named by its content.
 *
 * `npm run build:plotly` (or `make plotly`); the output is committed, so `make run` needs no Node. The plotly.js
 * npm package is pinned in package.json to the version of the plotly.min.js that Dash would serve (the Python
 * plotly package's: tests/test_plotly_bundle.py checks). esbuild's options follow plotly.js' own
 * (esbuild-config.js) but for CSS: the only stylesheet it imports is MapLibre's, for map traces not built here. */
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT_DIR = path.join(ROOT, 'assets', 'vendor');
const PREFIX = 'plotly-panorama.';
const VERSION = require('plotly.js/package.json').version;

/** Build the bundle in memory; return its bytes. Deterministic: the same inputs give the same bytes. */
async function build() {
    const result = await esbuild.build({
        entryPoints: [path.join(__dirname, 'panorama.js')],
        bundle: true,
        minify: true,
        write: false,
        format: 'iife',
        globalName: 'Plotly',
        target: 'es2016',
        define: {'global': 'window', 'define.amd': 'false', 'process.env.NODE_DEBUG': 'false'},
        loader: {'.css': 'empty'},
        legalComments: 'none',
        banner: {js: `/*! plotly.js ${VERSION} (MIT, https://github.com/plotly/plotly.js), partial: core, bar, ` +
            'choropleth, scattergeo. Built by tools/plotly/build.js */'},
        logLevel: 'warning',
    });
    return Buffer.from(result.outputFiles[0].contents);
}

/** The file name of these bytes: the start of their sha256, as tools/build_fonts.py names the font slices. */
function nameOf(bytes) {
    return PREFIX + crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16) + '.js';
}

/** Write the bundle into assets/vendor, remove older builds; return its file name. */
async function main() {
    const bytes = await build();
    const name = nameOf(bytes);
    fs.mkdirSync(OUT_DIR, {recursive: true});
    for (const old of fs.readdirSync(OUT_DIR)) {
        if (old.startsWith(PREFIX) && old !== name) {
            fs.unlinkSync(path.join(OUT_DIR, old));
        }
    }
    fs.writeFileSync(path.join(OUT_DIR, name), bytes);
    process.stdout.write(`assets/vendor/${name} (${bytes.length} bytes, plotly.js ${VERSION})\n`);
    return name;
}

module.exports = {build, nameOf, OUT_DIR, PREFIX, VERSION};
if (require.main === module) {
    main().catch((err) => {
        process.stderr.write(String(err && err.stack || err) + '\n');
        process.exit(1);
    });
}
