CREATE TABLE "backtest_trade_chunks" (
	"backtest_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"data" text NOT NULL,
	CONSTRAINT "backtest_trade_chunks_backtest_id_seq_pk" PRIMARY KEY("backtest_id","seq")
);
--> statement-breakpoint
ALTER TABLE "backtest_trade_chunks" ADD CONSTRAINT "backtest_trade_chunks_backtest_id_backtests_id_fk" FOREIGN KEY ("backtest_id") REFERENCES "public"."backtests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backtests" DROP COLUMN "trades_data";