import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/cli/common.js';
import { workerOpsFromEnv } from '../src/cli/worker-ops.js';
import type { Logger } from '../src/logger.js';
import { emfLine, runFailedMetricLine } from '../src/metrics/emf.js';

function recordingLogger() {
  const lines: string[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (msg) => void lines.push(msg),
    warn: (msg) => void lines.push(msg),
    error: (msg) => void lines.push(msg),
    child: () => logger,
  };
  return { logger, lines };
}

describe('the worker command\'s ECS settings (workerOpsFromEnv)', () => {
  it('defaults: a 90 s drain, no task protection, no metric', () => {
    const { logger, lines } = recordingLogger();
    expect(workerOpsFromEnv({}, {}, logger)).toEqual({ drainTimeoutMs: 90_000 });
    expect(lines).toEqual([]);
  });

  it('reads SWITCHYARD_DRAIN_TIMEOUT_MS; --drain-timeout wins; bad values are usage errors', () => {
    const { logger } = recordingLogger();
    expect(workerOpsFromEnv({ SWITCHYARD_DRAIN_TIMEOUT_MS: '30000' }, {}, logger).drainTimeoutMs).toBe(30_000);
    expect(workerOpsFromEnv({ SWITCHYARD_DRAIN_TIMEOUT_MS: '30000' }, { 'drain-timeout': '0' }, logger).drainTimeoutMs).toBe(0);
    expect(() => workerOpsFromEnv({ SWITCHYARD_DRAIN_TIMEOUT_MS: '1.5s' }, {}, logger)).toThrow(UsageError);
    expect(() => workerOpsFromEnv({}, { 'drain-timeout': '-1' }, logger)).toThrow(/drain-timeout must be a whole number >= 0/);
  });

  it('SWITCHYARD_TASK_PROTECTION=true uses ECS_AGENT_URI, or says once that it is skipped without it', () => {
    const { logger, lines } = recordingLogger();
    const on = workerOpsFromEnv({ SWITCHYARD_TASK_PROTECTION: 'true', ECS_AGENT_URI: 'http://169.254.170.2/api/abc' }, {}, logger);
    expect(on.taskProtection).toEqual({ agentUri: 'http://169.254.170.2/api/abc' });
    expect(lines).toEqual([]);
    const skipped = workerOpsFromEnv({ SWITCHYARD_TASK_PROTECTION: 'true' }, {}, logger);
    expect(skipped.taskProtection).toBeUndefined();
    expect(lines).toEqual(['task scale-in protection skipped: ECS_AGENT_URI is not set (not running on ECS)']);
    expect(workerOpsFromEnv({ SWITCHYARD_TASK_PROTECTION: 'false', ECS_AGENT_URI: 'http://x' }, {}, logger).taskProtection).toBeUndefined();
    expect(() => workerOpsFromEnv({ SWITCHYARD_TASK_PROTECTION: 'maybe' }, {}, logger)).toThrow(/SWITCHYARD_TASK_PROTECTION must be true or false/);
  });

  it('SWITCHYARD_METRIC_SERVICE: each failed run writes one EMF line (Switchyard/RunsFailed, Count 1, dimension Service)', () => {
    const { logger } = recordingLogger();
    const written: string[] = [];
    const ops = workerOpsFromEnv({ SWITCHYARD_METRIC_SERVICE: 'switchyard-prod' }, {}, logger, (line) => written.push(line));
    ops.onRunFailed!({ runId: 'r1', nodeId: 'n1', error: { code: 'NODE_FAILED', message: 'boom', retryable: true } });
    expect(written).toHaveLength(1);
    expect(written[0]).not.toContain('\n');
    const doc = JSON.parse(written[0]!);
    expect(doc).toEqual({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [{ Namespace: 'Switchyard', Dimensions: [['Service']], Metrics: [{ Name: 'RunsFailed', Unit: 'Count' }] }],
      },
      Service: 'switchyard-prod',
      RunsFailed: 1,
      RunId: 'r1',
      NodeId: 'n1',
    });
  });

  it('emfLine puts dimensions, metric values and plain fields at the top level', () => {
    const line = emfLine({ dimensions: { Service: 's' }, metrics: [{ name: 'A', unit: 'Seconds', value: 2 }], fields: { Note: 'x' }, timestamp: 5, namespace: 'N' });
    expect(JSON.parse(line)).toEqual({ _aws: { Timestamp: 5, CloudWatchMetrics: [{ Namespace: 'N', Dimensions: [['Service']], Metrics: [{ Name: 'A', Unit: 'Seconds' }] }] }, Service: 's', A: 2, Note: 'x' });
    expect(JSON.parse(runFailedMetricLine('s', { runId: 'r', nodeId: 'n' }, 7))._aws.Timestamp).toBe(7);
  });
});
