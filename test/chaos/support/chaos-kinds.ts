import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { NodeKind } from '../../../src/types/node-kind.js';

/** One execution of a `chaos-step` node, as the process that ran it recorded it. */
export interface Execution {
  runId: string;
  nodeId: string;
  attempt: number;
  pid: number;
  /** Epoch ms when the execution began. */
  at: number;
  /** The predecessors (from `preds`) whose outputs the node saw: a join that fired early saw too few. */
  seen: string[];
}

const StepParams = z
  .object({
    /** The node's output (and context value under `key` when given), followed by what it read from `preds`. */
    value: z.string(),
    /** Predecessor node ids whose outputs are appended (read behind `all` joins only, to stay deterministic). */
    preds: z.array(z.string()).default([]),
    /** Predecessors recorded in `seen` but not appended (an `any` join's, whose set depends on timing). */
    watch: z.array(z.string()).default([]),
    /** The first `failTimes` attempts throw (a retryable error). */
    failTimes: z.number().int().min(0).default(0),
    /** Work time, so that nodes are in flight when a fault hits. */
    ms: z.number().int().min(0).default(0),
    action: z.string().optional(),
    key: z.string().optional(),
  })
  .strict();
type StepParams = z.infer<typeof StepParams>;

/**
 * The chaos suite's node kind: records every execution (run, node, attempt, pid, start time, the
 * predecessors it saw) through `record` before doing anything else, then works `ms`, fails its first
 * `failTimes` attempts, and returns a deterministic output: the same in every executor.
 */
export function chaosStepKind(record: (execution: Execution) => void): NodeKind<StepParams> {
  return {
    name: 'chaos-step',
    params: StepParams,
    // Called with the params as written (before the schema's defaults).
    reads: (params: Partial<StepParams>) => ({ context: [], outputs: [...(params.preds ?? []), ...(params.watch ?? [])] }),
    async run(ctx) {
      const { params } = ctx;
      const seen = [...params.preds, ...params.watch].filter((id) => ctx.outputs[id] !== undefined);
      record({ runId: ctx.runId, nodeId: ctx.nodeId, attempt: ctx.attempt, pid: process.pid, at: Date.now(), seen });
      if (params.ms > 0) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, params.ms);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new Error('aborted'));
          }, { once: true });
        });
      }
      if (ctx.attempt <= params.failTimes) throw new Error(`chaos-step planned failure on attempt ${ctx.attempt}`);
      const output = [params.value, ...params.preds.map((id) => `${id}=${String(ctx.outputs[id])}`)].join(' ');
      return { output, ...(params.action ? { action: params.action } : {}), ...(params.key ? { context: { [params.key]: output } } : {}) };
    },
  };
}

/**
 * Records into `<dir>/exec-<pid>.jsonl`, one line per execution, written synchronously: a line is on
 * disk before the node does anything, so a SIGKILL right after cannot lose it.
 */
export function fileRecorder(dir: string): (execution: Execution) => void {
  const file = join(dir, `exec-${process.pid}.jsonl`);
  return (execution) => appendFileSync(file, `${JSON.stringify(execution)}\n`);
}
