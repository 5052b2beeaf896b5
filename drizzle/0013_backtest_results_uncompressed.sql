-- Backtest results are base64 of float64 records: TOAST compression (pglz) saves nothing on them and made writing a
-- large result about three times slower. Stored out of line, uncompressed.
ALTER TABLE "backtest_trade_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;--> statement-breakpoint
ALTER TABLE "backtests" ALTER COLUMN "equity_data" SET STORAGE EXTERNAL;
