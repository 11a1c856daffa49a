import { DEFAULT_DRAIN_TIMEOUT_MS, type RunFailure, type WorkerOptions } from '../executor/worker.js';
import type { Logger } from '../logger.js';
import { runFailedMetricLine } from '../metrics/emf.js';
import { intOption, UsageError } from './common.js';
import type { Parsed } from './options.js';

/** What the worker process reads of its environment for running on ECS (the caller passes process.env). */
export interface WorkerOpsEnv {
  /** Grace period of the SIGTERM drain, in ms (`--drain-timeout` wins). */
  SWITCHYARD_DRAIN_TIMEOUT_MS?: string;
  /** `true` protects the task from scale-in while the worker holds node jobs (needs ECS_AGENT_URI). */
  SWITCHYARD_TASK_PROTECTION?: string;
  /** Injected by the ECS agent into every container of a task. */
  ECS_AGENT_URI?: string;
  /** When set, each run the worker fails prints an EMF `Switchyard/RunsFailed` line with this `Service`. */
  SWITCHYARD_METRIC_SERVICE?: string;
}

export type WorkerOps = Pick<WorkerOptions, 'drainTimeoutMs' | 'taskProtection' | 'onRunFailed'>;

/**
 * The worker command's ECS-facing options: the drain's grace period, task scale-in protection and the
 * RunsFailed metric. `write` receives each metric line (the process writes it alone on stdout, where the
 * awslogs driver sends it to CloudWatch Logs, which extracts the metric).
 */
export function workerOpsFromEnv(
  env: WorkerOpsEnv,
  values: Pick<Parsed, 'drain-timeout'>,
  log: Logger,
  write: (line: string) => void = (line) => void process.stdout.write(line + '\n'),
): WorkerOps {
  const fromFlag = values['drain-timeout'] !== undefined;
  const drainTimeoutMs = intOption(
    fromFlag ? 'drain-timeout' : 'SWITCHYARD_DRAIN_TIMEOUT_MS',
    fromFlag ? values['drain-timeout'] : env.SWITCHYARD_DRAIN_TIMEOUT_MS || undefined,
    DEFAULT_DRAIN_TIMEOUT_MS,
    0,
  );
  const ops: WorkerOps = { drainTimeoutMs };
  if (flag('SWITCHYARD_TASK_PROTECTION', env.SWITCHYARD_TASK_PROTECTION)) {
    if (env.ECS_AGENT_URI) ops.taskProtection = { agentUri: env.ECS_AGENT_URI };
    else log.info('task scale-in protection skipped: ECS_AGENT_URI is not set (not running on ECS)');
  }
  const service = env.SWITCHYARD_METRIC_SERVICE;
  if (service) ops.onRunFailed = (failure: RunFailure) => write(runFailedMetricLine(service, failure));
  return ops;
}

function flag(name: string, raw: string | undefined): boolean {
  const value = (raw ?? '').trim().toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(value)) return true;
  if (['', 'false', '0', 'off', 'no'].includes(value)) return false;
  throw new UsageError(`${name} must be true or false (got "${raw}")`);
}
