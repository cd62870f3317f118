import type { Headline } from "./analyticsData.js";
import { percent } from "./format.js";

/** The four headline numbers: sent, delivery rate, open rate, click rate. */
export function MetricCards({ headline }: { headline: Headline }) {
  const cards = [
    { key: "sent", label: "Sent", value: headline.sent.toLocaleString(), hint: `${headline.delivered.toLocaleString()} delivered` },
    { key: "delivery-rate", label: "Delivery rate", value: percent(headline.deliveryRate), hint: "delivered / sent" },
    { key: "open-rate", label: "Open rate", value: percent(headline.openRate), hint: `${headline.opened.toLocaleString()} opened` },
    { key: "click-rate", label: "Click rate", value: percent(headline.clickRate), hint: `${headline.clicked.toLocaleString()} clicked` },
  ];
  return (
    <div className="herald-cards">
      {cards.map((c) => (
        <div className="herald-card" key={c.key} data-testid={`metric-${c.key}`}>
          <div className="herald-card-label">{c.label}</div>
          <div className="herald-card-value">{c.value}</div>
          <div className="herald-card-hint">{c.hint}</div>
        </div>
      ))}
    </div>
  );
}
