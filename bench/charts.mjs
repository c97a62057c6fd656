// Draws one SVG bar chart per case from bench/results/latest.json with vega-lite, headless:
// vega renders SVG in Node without a browser or a canvas.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';

const resultsDir = process.argv[2];
const latest = JSON.parse(readFileSync(join(resultsDir, 'latest.json'), 'utf8'));
const colors = { memmap: '#2f6fdf', node: '#8a8f98', peer: '#d9822b', c: '#3a9d5d' };

for (const result of latest.cases) {
  const values = result.rows
    .filter((row) => row.value !== null)
    .map((row) => ({ subject: row.subject, kind: row.kind, value: row.value.median, unit: row.unit }));
  if (values.length === 0) continue;
  const unit = values[0].unit;
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: result.title,
      subtitle: `${unit}, median; ${result.lowerIsBetter ? 'shorter is better' : 'longer is better'}`,
    },
    width: 520,
    data: { values },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'subject', type: 'nominal', sort: null, title: null, axis: { labelLimit: 420 } },
      x: { field: 'value', type: 'quantitative', title: unit, stack: null, scale: { type: 'log' } },
      color: {
        field: 'kind',
        type: 'nominal',
        title: null,
        scale: { domain: Object.keys(colors), range: Object.values(colors) },
      },
    },
  }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  await view.runAsync();
  const svg = await view.toSVG();
  writeFileSync(join(resultsDir, `${result.id}.svg`), svg);
}
