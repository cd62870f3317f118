#!/usr/bin/env bash
# Proves that an app which installs Herald can use it on plain Node (no tsx):
# builds dist/, links the package into a scratch app's node_modules, and runs
# the guide's "Initialize Services" and "Creating a Notification" there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
npm run -s build:lib
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
mkdir -p "$app/node_modules"
ln -s "$root" "$app/node_modules/herald"
echo '{"type":"module"}' > "$app/package.json"
cat > "$app/server.js" <<'JS'
import { createServer } from "node:http";
import { NotificationWebSocketServer, NotificationService, AnalyticsService, EmailDigestService, UserDirectory } from "herald";
import { HeraldClient } from "herald/client";

const server = createServer();
const wsServer = new NotificationWebSocketServer(server);
const notificationService = new NotificationService(wsServer);
const analyticsService = new AnalyticsService();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const notification = await notificationService.createAndSendNotification({
  userId: "provider-123",
  type: "new_message",
  priority: "high",
  title: "New message from Sarah Johnson",
  message: "Sarah has sent you a message about the booking",
});
const result = await notificationService.getNotifications("provider-123", { limit: 20, offset: 0, read: false, archived: false });
if (result.total !== 1 || result.notifications[0].id !== notification.id) throw new Error("notification not stored");
if (typeof HeraldClient !== "function" || typeof UserDirectory !== "function" || typeof EmailDigestService !== "function") throw new Error("exports missing");
console.log(`installed-app check: created ${notification.id}, analytics ${typeof analyticsService.getUserMetrics}`);
process.exit(0);
JS
(cd "$app" && DATA_DIR="$app/data" LOG_LEVEL=silent node server.js)
