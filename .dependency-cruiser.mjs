/**
 * The layers of src/, top to bottom (docs/architecture.md). A folder may import the folders below
 * its own layer, never one above it nor a sibling of its layer; type-only imports count, and no
 * import cycle is allowed anywhere. `npm run depcruise` checks it (CI: .ci/run).
 */
const LAYERS = [
  { name: 'entry', path: '^src/[^/]+\\.ts$' },
  { name: 'transports', folders: ['hub', 'ops', 'console'] },
  { name: 'control', folders: ['control'] },
  { name: 'memory', folders: ['memory'] },
  { name: 'cluster', folders: ['cluster'] },
  { name: 'loop', folders: ['loop'] },
  { name: 'orchestrator', folders: ['orchestrator'] },
  { name: 'session', folders: ['session'] },
  { name: 'webhooks', folders: ['webhooks'] },
  { name: 'events', folders: ['events'] },
  { name: 'persistence', folders: ['persistence'] },
  { name: 'context', folders: ['context'] },
  { name: 'llm', folders: ['llm'] },
  { name: 'metrics', folders: ['metrics'] },
  { name: 'common', folders: ['common'] },
  { name: 'config', folders: ['config', 'model'] },
];

const pathOf = (layer) => layer.path ?? `^src/(${layer.folders.join('|')})/`;
const folderPath = (folder) => `^src/${folder}/`;

const layerRules = LAYERS.flatMap((layer, i) => {
  const above = LAYERS.slice(0, i);
  const rules = [];
  if (above.length > 0) {
    rules.push({
      name: `no-upward-from-${layer.name}`,
      comment: `${layer.name} must not import the layers above it (${above.map((l) => l.name).join(', ')}).`,
      severity: 'error',
      from: { path: pathOf(layer) },
      to: { path: above.map(pathOf).join('|') },
    });
  }
  for (const folder of layer.folders ?? []) {
    const siblings = layer.folders.filter((f) => f !== folder);
    if (siblings.length > 0) {
      rules.push({
        name: `no-sideways-from-${folder}`,
        comment: `${folder} must not import its siblings in the ${layer.name} layer (${siblings.join(', ')}).`,
        severity: 'error',
        from: { path: folderPath(folder) },
        to: { path: siblings.map(folderPath).join('|') },
      });
    }
  }
  return rules;
});

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycle, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-tests-in-src',
      comment: 'Shipped code never imports the test folder (specs and contract suites may).',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.(spec|contract)\\.ts$' },
      to: { path: '^test/' },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/console/client/' },
    includeOnly: '^(src|test)/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
