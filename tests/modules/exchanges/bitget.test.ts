import { runConformance } from './conformance.js';

runConformance({ exchange: 'bitget', spotAmount: '0.01', swapAmount: '0.01', tinyAmount: '0.000001' });
