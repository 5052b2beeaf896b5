export * from './users.js';
export * from './exchange-keys.js';
export * from './datasets.js';
export * from './strategies.js';
export * from './ai.js';
export * from './orders.js';
export * from './backtests.js';
export * from './bots.js';
