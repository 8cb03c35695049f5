/**
 * The real inference worker plus a way to make it die, for the crash-recovery tests:
 * a run of model "crash:exit" ends the thread with exit code 3, "crash:throw" throws an
 * uncaught exception. Everything else is served normally.
 */
import { parentPort } from 'node:worker_threads';
import '../../../src/core/engine/worker.js';
import type { ClientMessage } from '../../../src/core/engine/protocol.js';

parentPort?.on('message', (message: ClientMessage) => {
  if (message.kind !== 'run') return;
  if (message.key === 'crash:exit') process.exit(3);
  if (message.key === 'crash:throw') {
    setImmediate(() => {
      throw new Error('boom from the test worker');
    });
  }
});
