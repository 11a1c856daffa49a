import { createLlmProvider } from '../llm/index.js';
import type { LlmProvider } from '../llm/types.js';
import { builtinNodeKinds } from './builtin.js';
import { createLambdaKind, type LambdaKindOptions } from './lambda.js';
import { createLlmKinds } from './llm.js';
import { loopKind } from './loop.js';
import { mapKind } from './map.js';
import { subflowKind } from './subflow.js';
import type { NodeKindRegistry } from '../types/node-kind.js';

export interface NodeKindsOptions {
  /** The provider behind the llm-* kinds. @default the offline provider */
  llm?: LlmProvider;
  lambda?: LambdaKindOptions;
}

/**
 * Every node kind Switchyard ships: template, output, route, sleep, llm-process, llm-condition,
 * llm-router, subflow, map, loop and lambda.
 */
export function createNodeKinds(options: NodeKindsOptions = {}): NodeKindRegistry {
  return builtinNodeKinds().with(...createLlmKinds(options.llm ?? createLlmProvider()), subflowKind, mapKind, loopKind, createLambdaKind(options.lambda));
}
