import { z } from 'zod';

/**
 * `inputs` as the seed blueprints write them: placeholder name -> a context key or node id, or a list of
 * them where the first one present wins.
 */
export const InputsSchema = z.record(z.string(), z.union([z.string(), z.array(z.string()).min(1)]));
export type Inputs = z.infer<typeof InputsSchema>;

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

/** Placeholder names used in a template, in order of first use. */
export function placeholders(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/** Every context key / node id that rendering `template` with `inputs` may read. */
export function templateSources(template: string, inputs: Inputs | undefined): string[] {
  const names = new Set<string>();
  for (const name of placeholders(template)) {
    const source = inputs && Object.hasOwn(inputs, name) ? inputs[name]! : name;
    for (const s of Array.isArray(source) ? source : [source]) names.add(s);
  }
  for (const source of Object.values(inputs ?? {})) {
    for (const s of Array.isArray(source) ? source : [source]) names.add(s);
  }
  return [...names];
}

/** Resolves one input spec: the first source whose value is present (not undefined/null). */
export function resolveInput(source: string | readonly string[], resolve: (name: string) => unknown): unknown {
  for (const name of typeof source === 'string' ? [source] : source) {
    const value = resolve(name);
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

/** Resolves every declared input to its value (undefined where nothing is present). */
export function resolveInputs(inputs: Inputs | undefined, resolve: (name: string) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, source] of Object.entries(inputs ?? {})) out[name] = resolveInput(source, resolve);
  return out;
}

/**
 * Fills `{{name}}` placeholders: a declared input resolves through its sources, an undeclared name as a
 * context key or node id itself. Missing values render as the empty string; non-strings as JSON.
 */
export function renderTemplate(template: string, inputs: Inputs | undefined, resolve: (name: string) => unknown): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => {
    const source = inputs && Object.hasOwn(inputs, name) ? inputs[name]! : name;
    return stringify(resolveInput(source, resolve));
  });
}

export function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
