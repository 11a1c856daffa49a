/**
 * `switchyard worker` as the CLI runs it, plus the `chaos-step` node kind, which records each execution
 * into CHAOS_EXEC_DIR (one file per process). The chaos tests bundle it as the image bundles the CLI and
 * start it as a child process (chaos-scenario.ts):
 *   node test-output/chaos-worker/chaos-worker.mjs worker --blueprints <dir> ...
 * (or, unbundled: node --import tsx test/chaos/support/chaos-worker.ts worker ...)
 */
import { main } from '../../../src/cli/main.js';
import { chaosStepKind, fileRecorder } from './chaos-kinds.js';

const dir = process.env.CHAOS_EXEC_DIR;
if (!dir) {
  console.error('chaos-worker: set CHAOS_EXEC_DIR');
  process.exit(2);
}
process.exitCode = await main(process.argv.slice(2), { kinds: [chaosStepKind(fileRecorder(dir))] });
