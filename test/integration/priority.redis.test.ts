import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { NodeKind } from '../../src/types/node-kind.js';
import { startHarness, type Harness } from '../support/harness.js';

/**
 * Run priorities (BullMQ's: 1 is the highest): every node job of a run carries its priority, so on a busy
 * worker a high-priority run overtakes a backlog of low-priority ones.
 */
describe('run priorities', () => {
  let h: Harness;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let gated!: () => void;
  const holding = new Promise<void>((resolve) => (gated = resolve));
  /** Labels of the runs whose `note` node ran, in order. */
  const order: string[] = [];
  const kinds: Array<NodeKind<any>> = [
    {
      name: 'hold',
      params: z.object({}),
      reads: () => ({ context: [], outputs: [] }),
      async run() {
        gated();
        await gate;
        return { output: 'held' };
      },
    },
    {
      name: 'note',
      params: z.object({}),
      reads: () => ({ context: ['label'], outputs: [] }),
      run(ctx) {
        order.push(String(ctx.context.label));
        return { output: 'noted' };
      },
    },
  ];

  beforeAll(async () => {
    // One worker taking one job at a time: a busy worker with a queue in front of it.
    h = await startHarness({ kinds, workers: 1, concurrency: 1 });
    h.registry.add({ id: 'busy', nodes: [{ id: 'hold', uses: 'hold' }] });
    h.registry.add({ id: 'noted', nodes: [{ id: 'first', uses: 'note' }, { id: 'second', uses: 'note' }], edges: [{ source: 'first', target: 'second' }] });
  });
  afterAll(() => h.close());

  it('a high-priority run overtakes a backlog of low-priority runs on a busy worker', async () => {
    const busy = await h.client.start('busy', {});
    await holding; // the worker's one slot is taken
    const low = await Promise.all(Array.from({ length: 20 }, (_, i) => h.client.start('noted', { label: `low${i}` }, { priority: 100 })));
    const high = await h.client.start('noted', { label: 'high' }, { priority: 1 });
    const [waiting, prioritized] = await Promise.all([h.client['queue'].queue.getWaitingCount(), h.client['queue'].queue.getPrioritizedCount()]);
    expect({ waiting, prioritized }).toEqual({ waiting: 0, prioritized: 21 });
    release();
    const views = await Promise.all([busy, ...low, high].map((run) => run.result({ timeoutMs: 30_000 })));
    expect(views.map((v) => v.status)).toEqual(views.map(() => 'completed'));
    // The high-priority run's start job was taken first: its first node ran before every low one
    // (its second node ran in the same job, claimed by the completing worker).
    expect(order.slice(0, 2)).toEqual(['high', 'high']);
    expect(order.filter((label) => label.startsWith('low'))).toHaveLength(40);
  });

  it('refuses a priority that BullMQ does not take', async () => {
    await expect(h.client.start('noted', { label: 'x' }, { priority: 0 })).rejects.toThrow(/priority must be a whole number from 1/);
    await expect(h.client.start('noted', { label: 'x' }, { priority: 1.5 })).rejects.toThrow(/priority/);
  });
});
