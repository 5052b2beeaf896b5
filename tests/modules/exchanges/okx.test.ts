import { runConformance } from './conformance.js';

// OKX swap amounts are contracts of 0.01 BTC.
runConformance({ exchange: 'okx', spotAmount: '0.01', swapAmount: '2', tinyAmount: '0.000001' });
