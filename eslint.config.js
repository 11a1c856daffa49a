// @ts-check
// `npm run lint`: typescript-eslint's recommended rules, unused code, and no import cycles (run by .ci/run).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.serverless/**', 'test-output/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    // Registered as `import` so the rules read as everyone knows them (`import/no-cycle`); import-x is the
    // maintained, flat-config-native fork of eslint-plugin-import.
    plugins: { import: importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      'import/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The dashboard's plain browser modules.
    files: ['src/dashboard/public/**/*.js'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', fetch: 'readonly', location: 'readonly', history: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', AbortController: 'readonly', URLSearchParams: 'readonly', URL: 'readonly', navigator: 'readonly', requestAnimationFrame: 'readonly', performance: 'readonly', sessionStorage: 'readonly', localStorage: 'readonly', HTMLElement: 'readonly', Event: 'readonly', KeyboardEvent: 'readonly', DOMParser: 'readonly', getComputedStyle: 'readonly', Intl: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
  },
  {
    // The local Serverless Framework plugin (CommonJS, loaded by the framework with require).
    files: ['scripts/**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    files: ['bin/**/*.mjs', 'scripts/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
