/**
 * NotificationTemplates: stored notification shapes with `{{variable}}`
 * placeholders. Rendering lists every missing variable (HERALD_TEMPLATE_VARIABLES,
 * a 400) instead of writing an empty string into someone's inbox.
 */
import { z } from "zod";
import { HeraldError, notFound } from "../errors/index.js";
import type { Database } from "../db/index.js";
import { type NotificationContent, notificationContentSchema, notificationTypeSchema, parseOrThrow, type TemplateVariables } from "./input.js";
import { PRIORITIES } from "./types.js";

export interface TemplatesDeps {
  database: Database;
}

export const templateKeySchema = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, "must be a lower-case key such as booking.reminder");

const text = (max: number) => z.string().min(1).max(max);
export const templateFieldsSchema = z
  .object({
    type: notificationTypeSchema,
    priority: z.enum(PRIORITIES).nullish(),
    titleTemplate: text(1000),
    messageTemplate: text(4000),
    descriptionTemplate: z.string().max(4000).nullish(),
    icon: z.string().max(64).nullish(),
    actionUrlTemplate: z.string().max(2048).nullish(),
    actionLabelTemplate: z.string().max(400).nullish(),
  })
  .strict();
export const templateCreateSchema = templateFieldsSchema.extend({ key: templateKeySchema }).strict();
export const templateUpdateSchema = templateFieldsSchema.partial().strict();

export type TemplateCreate = z.infer<typeof templateCreateSchema>;
export type TemplateUpdate = z.infer<typeof templateUpdateSchema>;

export interface NotificationTemplate {
  id: string;
  key: string;
  type: string;
  priority: string | null;
  titleTemplate: string;
  messageTemplate: string;
  descriptionTemplate: string | null;
  icon: string | null;
  actionUrlTemplate: string | null;
  actionLabelTemplate: string | null;
  createdAt: string;
  updatedAt: string;
}

const COLUMNS: Record<keyof z.infer<typeof templateFieldsSchema>, string> = {
  type: "type",
  priority: "priority",
  titleTemplate: "title_template",
  messageTemplate: "message_template",
  descriptionTemplate: "description_template",
  icon: "icon",
  actionUrlTemplate: "action_url_template",
  actionLabelTemplate: "action_label_template",
};
const SELECT = `id, key, ${Object.entries(COLUMNS).map(([f, c]) => `${c} AS "${f}"`).join(", ")}, created_at AS "createdAt", updated_at AS "updatedAt"`;

type Row = Omit<NotificationTemplate, "createdAt" | "updatedAt"> & { createdAt: Date | string; updatedAt: Date | string };
const toTemplate = (r: Row): NotificationTemplate => ({
  ...r,
  createdAt: new Date(r.createdAt).toISOString(),
  updatedAt: new Date(r.updatedAt).toISOString(),
});

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;

/** Replaces `{{name}}`; collects names with no value into `missing`. */
function fill(template: string, vars: TemplateVariables, missing: Set<string>, encode = false): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = Object.hasOwn(vars, name) ? vars[name] : undefined;
    if (v === undefined) {
      missing.add(name);
      return "";
    }
    // Values inside a URL are encoded so a variable cannot change the link's target.
    return encode ? encodeURIComponent(String(v)) : String(v);
  });
}

/** Fills a template; throws HERALD_TEMPLATE_VARIABLES listing every missing variable. */
export function renderTemplate(t: Pick<NotificationTemplate, keyof z.infer<typeof templateFieldsSchema>>, vars: TemplateVariables = {}): NotificationContent {
  const missing = new Set<string>();
  const content = {
    type: t.type,
    ...(t.priority ? { priority: t.priority } : {}),
    title: fill(t.titleTemplate, vars, missing),
    message: fill(t.messageTemplate, vars, missing),
    description: t.descriptionTemplate ? fill(t.descriptionTemplate, vars, missing) : null,
    icon: t.icon ?? null,
    actionUrl: t.actionUrlTemplate ? fill(t.actionUrlTemplate, vars, missing, true) : null,
    actionLabel: t.actionLabelTemplate ? fill(t.actionLabelTemplate, vars, missing) : null,
  };
  if (missing.size > 0) {
    const names = [...missing];
    throw new HeraldError(
      "HERALD_TEMPLATE_VARIABLES",
      `Missing template variables: ${names.join(", ")}`,
      names.map((n) => ({ field: `variables.${n}`, message: "required by the template" })),
    );
  }
  return parseOrThrow(notificationContentSchema, content, "rendered notification");
}

export class NotificationTemplates {
  constructor(private readonly deps: TemplatesDeps) {}

  async create(input: unknown): Promise<NotificationTemplate> {
    const t = parseOrThrow(templateCreateSchema, input, "template");
    const { database } = this.deps;
    const fields = Object.keys(COLUMNS) as (keyof typeof COLUMNS)[];
    const rows = await database.query<Row>(
      `INSERT INTO notification_templates (key, ${fields.map((f) => COLUMNS[f]).join(", ")})
       VALUES ($1, ${fields.map((_, i) => `$${i + 2}`).join(", ")})
       ON CONFLICT (key) DO NOTHING
       RETURNING ${SELECT}`,
      [t.key, ...fields.map((f) => t[f] ?? null)],
    );
    if (!rows[0]) throw new HeraldError("HERALD_CONFLICT", `A template with key "${t.key}" already exists`);
    return toTemplate(rows[0]);
  }

  async get(key: string): Promise<NotificationTemplate | null> {
    const { database } = this.deps;
    const rows = await database.query<Row>(`SELECT ${SELECT} FROM notification_templates WHERE key = $1`, [key]);
    return rows[0] ? toTemplate(rows[0]) : null;
  }

  async list(): Promise<NotificationTemplate[]> {
    const { database } = this.deps;
    return (await database.query<Row>(`SELECT ${SELECT} FROM notification_templates ORDER BY key`)).map(toTemplate);
  }

  async update(key: string, patch: unknown): Promise<NotificationTemplate> {
    const p = parseOrThrow(templateUpdateSchema, patch, "template");
    const { database } = this.deps;
    const fields = (Object.keys(COLUMNS) as (keyof typeof COLUMNS)[]).filter((f) => p[f] !== undefined);
    const rows = await database.query<Row>(
      `UPDATE notification_templates SET ${fields.map((f, i) => `${COLUMNS[f]} = $${i + 2}, `).join("")}updated_at = now()
        WHERE key = $1 RETURNING ${SELECT}`,
      [key, ...fields.map((f) => p[f])],
    );
    if (!rows[0]) throw notFound("Template");
    return toTemplate(rows[0]);
  }

  async delete(key: string): Promise<boolean> {
    const { database } = this.deps;
    return (await database.query(`DELETE FROM notification_templates WHERE key = $1 RETURNING id`, [key])).length > 0;
  }

  /** Loads and fills a template; 404 when the key is unknown. */
  async render(key: string, vars: TemplateVariables = {}): Promise<NotificationContent> {
    const t = await this.get(key);
    if (!t) throw notFound(`Template "${key}"`);
    return renderTemplate(t, vars);
  }
}
