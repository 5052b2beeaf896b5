/** Bumped whenever a change can alter backtest results (fills, indicators, metrics). Stored with every result. */
export const ENGINE_VERSION = '1.0.0';
