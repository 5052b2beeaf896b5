CREATE TABLE "datasets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"name" text NOT NULL,
	"source" text NOT NULL,
	"status" text DEFAULT 'importing' NOT NULL,
	"error" text,
	"sha256" text,
	"rows" integer,
	"bytes" bigint,
	"from_at" timestamp (3) with time zone,
	"to_at" timestamp (3) with time zone,
	"timeframe_ms" bigint,
	"timeframe" text,
	"quality" jsonb,
	"warnings" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"storage_file" text,
	"file_name" text,
	"file_size" bigint,
	"file_mtime" timestamp (3) with time zone,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "datasets_user_created_idx" ON "datasets" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "datasets_sha256_idx" ON "datasets" USING btree ("sha256");--> statement-breakpoint
CREATE INDEX "datasets_importing_idx" ON "datasets" USING btree ("heartbeat_at") WHERE "datasets"."status" = 'importing';--> statement-breakpoint
CREATE INDEX "datasets_user_file_idx" ON "datasets" USING btree ("user_id","file_name") WHERE "datasets"."source" = 'file';