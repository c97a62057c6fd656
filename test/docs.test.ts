/**
 * docs/api.md against the declarations: every property of every exported interface is written
 * in the api.md code block that declares that interface, so an option added to the code and
 * not to the reference fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { root } from './helpers/index.js';

/** The properties of each interface declared in the built .d.ts files. */
function declaredInterfaces(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const dir = join(root, 'dist', 'src');
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.d.ts')) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/export interface (\w+)(?:<[^>]*>)? (?:extends [^{]+)?\{([\s\S]*?)\n\}/g)) {
      found.set(
        m[1] as string,
        [...(m[2] as string).matchAll(/^ {4}(?:readonly )?(\w+)\??:/gm)].map((p) => p[1] as string),
      );
    }
  }
  return found;
}

describe('docs/api.md', () => {
  it('declares every property of every exported interface', () => {
    const api = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
    const code = [...api.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n```\n');
    const index = readFileSync(join(root, 'dist', 'src', 'index.d.ts'), 'utf8');
    const exported = [...index.matchAll(/export type \{([^}]*)\}/g)].flatMap((m) =>
      (m[1] as string)
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    );
    const declared = declaredInterfaces();
    const missing: string[] = [];
    for (const name of exported) {
      const properties = declared.get(name);
      if (properties === undefined) continue; // a type alias, not an interface
      const at = code.search(new RegExp(`interface ${name}\\b`));
      if (at < 0) {
        missing.push(`${name} (no interface ${name} in a ts block)`);
        continue;
      }
      const rest = code.slice(at + 1);
      const stop = rest.search(/\n(interface |type |```|function |declare )/);
      const declaration = code.slice(at, at + 1 + (stop < 0 ? rest.length : stop));
      for (const property of properties) {
        if (!new RegExp(`\\b${property}\\b`).test(declaration)) missing.push(`${name}.${property}`);
      }
    }
    assert.deepEqual(missing, [], `docs/api.md does not declare: ${missing.join(', ')}`);
  });
});
