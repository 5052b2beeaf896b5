import { runConformance } from './conformance.js';

runConformance({ exchange: 'binance', spotAmount: '0.01', swapAmount: '0.01', tinyAmount: '0.001' });
