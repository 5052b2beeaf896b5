/**
 * Entry of the backtest worker threads when the service runs from its TypeScript sources (tsx; the build runs
 * dist/workers/backtest.worker.js directly). Node 20 does not hand tsx's ES module loader on to worker threads, so
 * a thread would load the .ts worker through tsx's CommonJS hook, whose output reads every imported binding
 * through a getter: the engine's hot loops ran about 1.6x slower. This registers the loader in the thread and
 * re-exports the worker as an ES module.
 */
import { register } from 'tsx/esm/api';

register();
const worker = await import('./backtest.worker.ts');

export default worker.default;
export const { ENGINE_VERSION, runBacktestScratch } = worker;
