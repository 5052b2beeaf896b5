ALTER TABLE "backtests" ALTER COLUMN "trades_data" SET DATA TYPE text;--> statement-breakpoint
ALTER TABLE "backtests" ALTER COLUMN "equity_data" SET DATA TYPE text;