CREATE TABLE "bot_candles" (
	"bot_id" uuid NOT NULL,
	"ts" bigint NOT NULL,
	"open" numeric NOT NULL,
	"high" numeric NOT NULL,
	"low" numeric NOT NULL,
	"close" numeric NOT NULL,
	"volume" numeric NOT NULL,
	"live" boolean NOT NULL,
	CONSTRAINT "bot_candles_bot_id_ts_pk" PRIMARY KEY("bot_id","ts")
);
--> statement-breakpoint
CREATE TABLE "bot_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"bot_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"type" text NOT NULL,
	"candle_at" bigint,
	"data" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bots" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"name" text NOT NULL,
	"strategy_id" uuid NOT NULL,
	"strategy_version" integer NOT NULL,
	"key_id" text NOT NULL,
	"symbol" text NOT NULL,
	"timeframe" text NOT NULL,
	"params" jsonb NOT NULL,
	"sizing" jsonb NOT NULL,
	"risk" jsonb NOT NULL,
	"status" text DEFAULT 'stopped' NOT NULL,
	"status_reason" jsonb,
	"position" integer DEFAULT 0 NOT NULL,
	"position_size" numeric DEFAULT '0' NOT NULL,
	"entry_price" numeric,
	"daily_pnl" numeric DEFAULT '0' NOT NULL,
	"daily_pnl_day" text,
	"last_candle_at" bigint,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "kill_switches" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"scope" text NOT NULL,
	"user_id" uuid,
	"engaged_by" uuid,
	"reason" text,
	"engaged_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "bot_candles" ADD CONSTRAINT "bot_candles_bot_id_bots_id_fk" FOREIGN KEY ("bot_id") REFERENCES "public"."bots"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bot_events" ADD CONSTRAINT "bot_events_bot_id_bots_id_fk" FOREIGN KEY ("bot_id") REFERENCES "public"."bots"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bot_events" ADD CONSTRAINT "bot_events_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bots" ADD CONSTRAINT "bots_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "kill_switches" ADD CONSTRAINT "kill_switches_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "bot_events_bot_idx" ON "bot_events" USING btree ("bot_id","created_at","id");--> statement-breakpoint
CREATE INDEX "bots_user_idx" ON "bots" USING btree ("user_id","created_at","id");--> statement-breakpoint
CREATE INDEX "bots_running_idx" ON "bots" USING btree ("status","lease_expires_at") WHERE status = 'running';--> statement-breakpoint
CREATE UNIQUE INDEX "kill_switches_user_uq" ON "kill_switches" USING btree ("user_id") WHERE scope = 'user';--> statement-breakpoint
CREATE UNIQUE INDEX "kill_switches_global_uq" ON "kill_switches" USING btree ("scope") WHERE scope = 'global';