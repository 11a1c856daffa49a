// `npm run lint` (deps): no import cycles in src/, type-only imports included (ESLint's import/no-cycle
// skips `import type`, but a type cycle still ties two folders together).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Dependencies point one way (STYLE.md): put shared types in a dependency-free module instead.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
