// ESLint for the whole repository (`npm run lint`): typescript-eslint for the
// TypeScript, eslint-plugin-svelte for the portal, as SvelteKit sets them up.
// Formatting is Prettier's job (.prettierrc.json), not ESLint's.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['**/node_modules/**', 'web/.svelte-kit/**', 'web/build/**', '**/dist/**', 'infra/**'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  svelte.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    files: ['web/**/*.svelte', 'web/**/*.svelte.ts'],
    languageOptions: { globals: { ...globals.browser }, parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },
  {
    // Packages meet through their names and exports maps (`@saasodoo/platform/config`), never a `../` path
    // into another package's folder: a path import skips the package's declared surface and breaks
    // when a folder moves. `node .ci/package-imports.mjs` rewrites any that slip in.
    files: ['**/*.{ts,mts,js,mjs,svelte}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(platform|events|web|functions|tests)/',
              message: 'Import another package through its name (@saasodoo/platform/…, @saasodoo/events/…, @saasodoo/web/lib/…, @saasodoo/fn-…): run node .ci/package-imports.mjs.',
            },
          ],
        },
      ],
    },
  },
  {
    // A function's folder is its own package: `../` from its top level is always another package.
    files: ['functions/*/*.{ts,mts,js,mjs}'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./', message: 'Import another package through its name (@saasodoo/platform/…, @saasodoo/fn-…).' }] }],
    },
  },
  {
    // Typed with the client's models (issue 19): an `any` here would hide a wrong field of a Kubernetes object.
    files: ['platform/src/runtime/kubernetes/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    // The text rule exists to find control characters: its patterns name them on purpose.
    files: ['events/text.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    rules: {
      // The portal is served at the root (no `paths.base`): resolve() would change no link.
      'svelte/no-navigation-without-resolve': 'off',
      // Being typed away file by file; a warning until then, so new code sees it.
      '@typescript-eslint/no-explicit-any': 'warn',
      // `_`-prefixed names are deliberately unused (destructuring to drop a key, required parameters).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
);
