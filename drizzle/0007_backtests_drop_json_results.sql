ALTER TABLE "backtests" DROP COLUMN "trades";--> statement-breakpoint
ALTER TABLE "backtests" DROP COLUMN "equity";