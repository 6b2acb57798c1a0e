import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layering of src/ (docs/architecture.md), enforced: a folder is entered
 * only through its index.ts, and the arrows point one way. Type-only imports
 * count too: a type from a forbidden room is a coupling all the same.
 */
const door = {
  regex: '^(\\.\\./)+(?!index\\.js$)[a-z-]+/(?!index\\.js$)[^/]+',
  message: 'import another src/ folder only through its index.ts (its door)',
};
const forbid = (...rooms) => ({
  regex: `^(\\.\\./)+(${rooms.join('|')})/`,
  message: `this folder must not depend on ${rooms.join(', ')} (see the layering in docs/architecture.md)`,
});
const layer = (files, ...rooms) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns: [door, ...(rooms.length ? [forbid(...rooms)] : [])] }] },
});

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  // Every src/ folder: other folders only through their door.
  layer(['src/**/*.ts']),
  // Pure logic and low layers know nothing of the store, the daemons or the CLI.
  layer(['src/acl/**/*.ts', 'src/pki/**/*.ts', 'src/rules/**/*.ts', 'src/rotation/**/*.ts', 'src/compose/**/*.ts', 'src/tmpfs-mount/**/*.ts'], 'store', 'api', 'server', 'agent', 'cli', 'protocol', 'http'),
  // Storage is below every API and daemon.
  layer(['src/store/**/*.ts'], 'api', 'server', 'cli', 'agent', 'protocol', 'http'),
  // The wire contract and the HTTP plumbing serve both sides and belong to neither.
  layer(['src/protocol/**/*.ts', 'src/http/**/*.ts'], 'api', 'server', 'agent', 'store', 'cli'),
  // The agent talks to the store only over the node protocol: it never loads storage, the store daemon or the admin API.
  layer(['src/agent/**/*.ts'], 'store', 'server', 'api', 'cli'),
  // The admin API is served by the store daemon, not the other way round.
  layer(['src/api/**/*.ts'], 'server', 'agent', 'cli'),
  layer(['src/server/**/*.ts'], 'agent', 'cli'),
);
