import { parentPort, workerData } from 'node:worker_threads';
import { InternalError } from '../errors';
import type { WorkerInput, WorkerResult, WorkerTask } from './randomForest';
import { growTree } from './tree';

/**
 * Worker entry for trainForest: reads the shared (SharedArrayBuffer) training matrix once, then
 * grows whichever tree the main thread asks for and hands its arrays back without copying.
 */
const { matrix, params } = workerData as WorkerInput;
const port = parentPort;
if (port === null) throw new InternalError('forestWorker must run as a worker thread');

port.on('message', (task: WorkerTask) => {
  let result: WorkerResult;
  try {
    result = { kind: 'tree', treeIndex: task.treeIndex, tree: growTree(matrix, params, task.seed) };
  } catch (error) {
    result = { kind: 'error', treeIndex: task.treeIndex, message: (error as Error).message };
  }
  const transfer =
    result.kind === 'tree'
      ? [
          result.tree.feature.buffer,
          result.tree.threshold.buffer,
          result.tree.child.buffer,
          result.tree.leafValues.buffer,
        ]
      : [];
  port.postMessage(result, transfer as ArrayBuffer[]);
});
