/**
 * "Enable browser notifications" / "Disable" in the notification center's
 * header. Hidden where the browser has no push support.
 */
import { type UsePushSubscriptionOptions, usePushSubscription } from "./usePushSubscription.js";

export function PushToggle(props: UsePushSubscriptionOptions) {
  const push = usePushSubscription(props);
  if (push.state === "unsupported") return null;
  return (
    <div className="herald-push" data-testid="push-toggle" data-state={push.state}>
      {push.state === "denied" ? (
        <span className="muted">Browser notifications are blocked for this site</span>
      ) : push.state === "on" ? (
        <button type="button" onClick={() => void push.disable()}>
          Disable browser notifications
        </button>
      ) : (
        <button type="button" onClick={() => void push.enable()} disabled={push.state !== "off"}>
          Enable browser notifications
        </button>
      )}
      {push.error && (
        <p className="herald-error" role="alert" data-testid="push-error">
          {push.error}
        </p>
      )}
    </div>
  );
}
