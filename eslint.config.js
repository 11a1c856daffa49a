// @ts-check
// `npm run lint`: typescript-eslint's recommended rules, no unused code, and no import cycles (with
// dependency-cruiser for type-only cycles and layering: .dependency-cruiser.cjs). .ci/run runs it.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.serverless/**', 'test-output/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs', '**/*.cjs'],
    // Registered as `import` so the rule reads as everyone knows it (`import/no-cycle`); import-x is the
    // maintained, flat-config-native fork of eslint-plugin-import.
    plugins: { import: importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    rules: {
      'import/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `typeof import('…')` types stay allowed: the AWS SDKs are imported lazily, on first use.
      '@typescript-eslint/consistent-type-imports': ['error', { disallowTypeAnnotations: false }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The dashboard: plain ES modules in the browser, no build step.
    files: ['src/dashboard/public/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Tests read untyped JSON (CloudFormation templates, API bodies, event payloads) and poke at internals.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
