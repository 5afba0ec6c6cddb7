/**
 * Jest runs in native ESM mode (NODE_OPTIONS=--experimental-vm-modules, set by `npm test`):
 * Nest 12 packages are ESM-only and Jest 30 on Node 20 can load them only this way.
 * ts-jest transpiles without type-checking (isolatedModules); `npm run typecheck` and the
 * build do the type-checking.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  testTimeout: 30000,
  watchman: false,
};
