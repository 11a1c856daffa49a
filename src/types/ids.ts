import { createHash } from 'node:crypto';

/** Run ids: letters, digits, `_` and `-` (they become parts of Redis keys and BullMQ job ids). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * The id of the child run a subflow node starts on a given attempt: derived, so a redelivered job finds
 * the child it already started instead of starting a second one, and a retry starts a fresh child.
 */
export function childRunId(parentRunId: string, nodeId: string, attempt: number): string {
  return createHash('sha256').update(`${parentRunId}\u0000${nodeId}\u0000${attempt}`).digest('base64url').slice(0, 22);
}

/**
 * The id of one of several child runs a node starts on an attempt (a map's item, a loop's iteration):
 * the attempt's {@link childRunId} and the index, so the run scripts can derive it too.
 */
export function indexedChildRunId(parentRunId: string, nodeId: string, attempt: number, index: number): string {
  return `${childRunId(parentRunId, nodeId, attempt)}-${index}`;
}
