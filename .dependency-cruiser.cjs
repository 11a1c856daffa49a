// `npm run lint` (deps): dependencies point one way (STYLE.md: entry points -> executors -> engine ->
// store/queue/nodes -> redis/llm). Type-only imports count too: ESLint's import/no-cycle skips `import type`,
// but a type cycle still ties two folders together. Shared types live in the dependency-free src/types/.

/** src/ folders (and top-level modules) from the bottom up; a layer may import only from layers below it. */
const LAYERS = [
  ['errors'],
  ['types'],
  ['llm', 'blueprint', 'logger', 'drawing', 'dashboard', 'redis-connection', 'metrics'],
  ['nodes', 'store', 'options'],
  ['engine'],
  ['queue'],
  ['client', 'executor'],
  ['api'],
  ['local'],
  ['cli', 'index'],
];

const pattern = (names) => `^src/(${names.join('|')})(/|\\.ts$)`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles: put what both sides need in a module below them (shared types in src/types/).',
      from: {},
      to: { circular: true },
    },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `layer-${layer.join('-')}`,
      severity: 'error',
      comment: `src/{${layer.join(',')}} may not import from the layers above it (see LAYERS).`,
      from: { path: pattern(layer) },
      to: { path: pattern(LAYERS.slice(i + 1).flat()) },
    })),
    {
      name: 'peers-stay-apart',
      severity: 'error',
      comment: 'Folders in one layer do not import each other, except where listed here.',
      from: { path: '^src/(llm|blueprint|logger|drawing|dashboard|redis-connection|metrics)(/|\\.ts$)' },
      to: { path: '^src/(llm|blueprint|logger|drawing|dashboard|redis-connection|metrics)(/|\\.ts$)', pathNot: '^src/$1(/|\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
