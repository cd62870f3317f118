/** What the notification service and its parts (inbox, templates, broadcast) are given by the composition root. */
import type { AnalyticsIngest } from "../analytics/index.js";
import type { Bus } from "../bus/index.js";
import type { Cache } from "../cache/index.js";
import type { Config } from "../config/index.js";
import type { Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";

export interface NotificationDeps {
  database: Database;
  bus: Bus;
  cache: Cache;
  clock: Clock;
  logger: Logger;
  analytics: AnalyticsIngest;
  /** The delivery rules' server setting (EMAIL_UNSEEN_DELAY); the rules' default without it. */
  config?: Pick<Config, "emailUnseenDelayMs">;
}
