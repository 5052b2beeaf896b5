/**
 * Public surface of the backtest engine, for src/ (bots, paper exchange, strategy routes) and the worker.
 * Everything here is pure: no I/O.
 */
export {
  parseStrategy,
  resolveParams,
  strategyJsonSchema,
  StrategySchema,
  type StrategyDoc,
  type Issue,
  type Result,
  type ParamValues,
} from './dsl.js';
export {
  createEvaluator,
  resolveAction,
  StrategyError,
  LONG_ENTRY,
  LONG_EXIT,
  SHORT_ENTRY,
  SHORT_EXIT,
  NONE,
  OPEN_LONG,
  OPEN_SHORT,
  CLOSE,
  REVERSE_TO_LONG,
  REVERSE_TO_SHORT,
  type Action,
  type Candle,
  type Columns,
  type Decision,
  type DecisionArrays,
  type Evaluator,
} from './evaluator.js';
export { simulate, resolveSizingAndRisk, roundLot, DEFAULT_SETTINGS, TradeLog, type SimSettings, type SimResult, type Trade, type ExitReason } from './simulate.js';
export { computeMetrics, type Metrics, type MetricsInput } from './metrics.js';
export { ENGINE_VERSION } from './version.js';
