/**
 * CloudWatch Embedded Metric Format (EMF): a metric is one JSON document written alone on a line to a log
 * that CloudWatch Logs reads (a Lambda's or an ECS task's awslogs stream). CloudWatch extracts the metrics
 * from it: no SDK call, no cloudwatch:PutMetricData permission. Used by the backlog function and the
 * worker process.
 */

/** The namespace of every Switchyard metric. */
export const METRIC_NAMESPACE = 'Switchyard';

/** CloudWatch units Switchyard uses. */
export type MetricUnit = 'Count' | 'Seconds' | 'Milliseconds';

export interface EmfMetric {
  name: string;
  unit: MetricUnit;
  value: number;
}

export interface EmfDocument {
  /** Dimension name -> value; every metric of the document gets this one dimension set. */
  dimensions: Record<string, string>;
  metrics: readonly EmfMetric[];
  /** Plain log fields (not metrics), for Logs Insights. */
  fields?: Record<string, string | number>;
  /** @default Date.now() */
  timestamp?: number;
  /** @default {@link METRIC_NAMESPACE} */
  namespace?: string;
}

/**
 * The EMF document as one line of JSON (no newline). Write it with process.stdout.write and a newline, not
 * console.log: CloudWatch only extracts metrics from a line that is the document itself.
 */
export function emfLine(doc: EmfDocument): string {
  const root: Record<string, unknown> = {
    _aws: {
      Timestamp: doc.timestamp ?? Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: doc.namespace ?? METRIC_NAMESPACE,
          Dimensions: [Object.keys(doc.dimensions)],
          Metrics: doc.metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
        },
      ],
    },
    ...doc.dimensions,
  };
  for (const m of doc.metrics) root[m.name] = m.value;
  Object.assign(root, doc.fields);
  return JSON.stringify(root);
}

/** The worker's metric: one per run it fails (a node failed after its retries and fallback). */
export const RUNS_FAILED_METRIC = 'RunsFailed';

/** The EMF line for one failed run, with dimension `Service`; the run and node are plain log fields. */
export function runFailedMetricLine(service: string, run: { runId: string; nodeId: string }, timestamp = Date.now()): string {
  return emfLine({
    dimensions: { Service: service },
    metrics: [{ name: RUNS_FAILED_METRIC, unit: 'Count', value: 1 }],
    fields: { RunId: run.runId, NodeId: run.nodeId },
    timestamp,
  });
}
