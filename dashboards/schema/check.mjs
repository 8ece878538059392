// Type-checks a Grafana dashboard JSON file against Grafana's published schemas: the dashboard
// model of @grafana/schema (raw/dashboard) and, for each panel, the options and custom field
// config of its panel type (raw/composable/<type>/panelcfg). TypeScript does the checking: the
// file's content is written out as typed object literals, so a missing required field, an
// unknown field or a value outside an enum is a compile error naming the line.
//
//   node check.mjs DASHBOARD.json WORKDIR
//
// WORKDIR holds node_modules with the packages of package-lock.json (npm ci). Exit status 0
// when the dashboard conforms; tsc's errors otherwise.
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const [dashboardPath, workdir] = process.argv.slice(2);
if (!dashboardPath || !workdir) {
  console.error('usage: node check.mjs DASHBOARD.json WORKDIR');
  process.exit(2);
}
const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8'));
// Export-only keys, read by Grafana's import and not part of the stored model.
const { __inputs, __requires, __elements, ...model } = dashboard;
if (!Array.isArray(__inputs)) {
  console.error(`${dashboardPath}: no __inputs list`);
  process.exit(1);
}

const raw = '@grafana/schema/dist/esm/raw';
// Panel types and the schema modules of their options and custom field config.
const panelTypes = {
  timeseries: ['TimeSeries', 'timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen', true],
  stat: ['Stat', 'stat/panelcfg/x/StatPanelCfg_types.gen', false],
  'state-timeline': ['StateTimeline', 'statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen', true],
  bargauge: ['BarGauge', 'bargauge/panelcfg/x/BarGaugePanelCfg_types.gen', false],
};

const lines = [
  `import type { Dashboard } from '${raw}/dashboard/x/Dashboard_types.gen';`,
  ...Object.values(panelTypes).map(
    ([name, path]) => `import type * as ${name} from '${raw}/composable/${path}';`,
  ),
  '',
  '// JSON spells a string enum by its value: accept the values of every enum.',
  'type Json<T> = T extends string',
  '  ? `${T}`',
  '  : T extends readonly (infer U)[]',
  '    ? Json<U>[]',
  '    : T extends object',
  '      ? { [K in keyof T]: Json<T[K]> }',
  '      : T;',
  '',
  `export const dashboard: Json<Dashboard> = ${JSON.stringify(model, null, 2)};`,
  '',
];
const panels = (model.panels ?? []).flatMap((panel) => [panel, ...(panel.panels ?? [])]);
for (const panel of panels) {
  if (panel.type === 'row') {
    continue;
  }
  const known = panelTypes[panel.type];
  if (!known) {
    console.error(`panel ${panel.id} "${panel.title}": no schema known for panel type ${panel.type}`);
    process.exit(1);
  }
  const [name, , hasFieldConfig] = known;
  lines.push(
    `// panel ${panel.id}: ${panel.title}`,
    `export const options${panel.id}: Json<${name}.Options> = ${JSON.stringify(panel.options ?? {}, null, 2)};`,
  );
  if (hasFieldConfig) {
    const custom = panel.fieldConfig?.defaults?.custom ?? {};
    lines.push(
      `export const custom${panel.id}: Json<${name}.FieldConfig> = ${JSON.stringify(custom, null, 2)};`,
    );
  }
}
const source = join(workdir, 'dashboard-check.ts');
writeFileSync(source, lines.join('\n'));
const tsc = join(workdir, 'node_modules', 'typescript', 'bin', 'tsc');
const flags = ['--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022'];
flags.push('--module', 'esnext', '--moduleResolution', 'bundler', source);
try {
  execFileSync(process.execPath, [tsc, ...flags], { stdio: 'inherit', timeout: 120_000 });
} catch (error) {
  console.error(`${dashboardPath} does not match @grafana/schema (generated ${source})`);
  process.exit(1);
}
const rows = panels.filter((panel) => panel.type === 'row').length;
console.log(
  `${dashboardPath}: the dashboard model, ${rows} rows and ${panels.length - rows} panels match @grafana/schema`,
);
