ALTER TABLE "backtests" ADD COLUMN "trades_data" "bytea";--> statement-breakpoint
ALTER TABLE "backtests" ADD COLUMN "equity_data" "bytea";