// Bundles the CLI and the library entry with esbuild (dependencies stay external: they are installed).
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', packages: 'external', sourcemap: true, logLevel: 'info' };
await build({ ...common, entryPoints: { cli: 'src/cli/main.ts', index: 'src/index.ts' }, outdir: 'dist', outExtension: { '.js': '.mjs' } });
