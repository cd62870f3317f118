/**
 * docs/asyncapi.yaml and docs/websocket.md describe the protocol module
 * (src/protocol/index.ts): this fails as soon as one changes without the
 * other. The module is read with the TypeScript compiler's parser (its
 * declarations, not its runtime values, so the types are compared too): every
 * ServerMessage and ClientMessage union member is one message of the document,
 * in the right direction, with the same fields, the same required ones and
 * the same field types; NotificationDto, Presentation and the enums match
 * their schemas; CloseCodes match the channel's x-close-codes; the prose
 * names every close code and message type.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
// `yaml` is installed as a dependency of @fastify/swagger; it is not (yet) a devDependency of its own.
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const source = ts.createSourceFile("index.ts", readFileSync(path.join(root, "src/protocol/index.ts"), "utf8"), ts.ScriptTarget.Latest, true);
/** The parts of the document read here (the checks below fail when one is missing). */
interface Ref {
  $ref: string;
}
interface Schema {
  $ref?: string;
  const?: string;
  type?: string | string[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: string[];
}
interface Operation {
  action: string;
  channel: Ref;
  messages?: Ref[];
  reply?: { messages?: Ref[] };
}
interface AsyncApi {
  asyncapi: string;
  channels: { notifications: { address: string; messages: Record<string, Ref>; "x-close-codes": Array<{ code: number; name: string; description: string }> } };
  operations: Record<string, Operation>;
  components: { schemas: Record<string, Schema> };
}
interface Message {
  payload: Schema;
}
const doc = parseYaml(readFileSync(path.join(root, "docs/asyncapi.yaml"), "utf8")) as AsyncApi;
const prose = readFileSync(path.join(root, "docs/websocket.md"), "utf8");

// ---- the protocol module, as declared -------------------------------------------------------------

/** A field's type as a set of kinds both sides can express: string, number, boolean, null, object, literal:x, ref:Name, array:<kinds>. */
function kindsOfType(node: ts.TypeNode): string[] {
  if (ts.isUnionTypeNode(node)) return node.types.flatMap(kindsOfType);
  if (ts.isParenthesizedTypeNode(node)) return kindsOfType(node.type);
  if (ts.isArrayTypeNode(node)) return [`array:${kindsOfType(node.elementType).sort().join("|")}`];
  if (ts.isLiteralTypeNode(node)) {
    if (node.literal.kind === ts.SyntaxKind.NullKeyword) return ["null"];
    if (ts.isStringLiteral(node.literal)) return [`literal:${node.literal.text}`];
  }
  if (ts.isTypeReferenceNode(node)) {
    const name = node.typeName.getText(source);
    return name === "Record" ? ["object"] : [`ref:${name}`];
  }
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
      return ["string"];
    case ts.SyntaxKind.NumberKeyword:
      return ["number"];
    case ts.SyntaxKind.BooleanKeyword:
      return ["boolean"];
  }
  throw new Error(`protocol/index.ts: no kind for the type "${node.getText(source)}"; extend kindsOfType`);
}

interface Shape {
  /** field name -> sorted kinds */
  fields: Record<string, string>;
  required: string[];
}

function shapeOfMembers(members: ts.NodeArray<ts.TypeElement>): Shape {
  const fields: Record<string, string> = {};
  const required: string[] = [];
  for (const m of members) {
    if (!ts.isPropertySignature(m) || !m.type) throw new Error(`protocol/index.ts: unexpected member ${m.getText(source)}`);
    const name = m.name.getText(source);
    fields[name] = kindsOfType(m.type).sort().join("|");
    if (!m.questionToken) required.push(name);
  }
  return { fields, required: required.sort() };
}

function typeAlias(name: string): ts.TypeAliasDeclaration {
  const found = source.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s) && s.name.text === name);
  if (!found) throw new Error(`protocol/index.ts has no type ${name}`);
  return found;
}

function interfaceShape(name: string): Shape {
  const found = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  if (!found) throw new Error(`protocol/index.ts has no interface ${name}`);
  return shapeOfMembers(found.members);
}

/** One shape per union member of `type Name = | {...} | {...}`. */
function unionShapes(name: string): Shape[] {
  const t = typeAlias(name).type;
  if (!ts.isUnionTypeNode(t)) throw new Error(`${name} is not a union`);
  return t.types.map((member) => {
    if (!ts.isTypeLiteralNode(member)) throw new Error(`${name}: a member is not an object type: ${member.getText(source)}`);
    return shapeOfMembers(member.members);
  });
}

/** The initializer of `export const Name = ... as const`, without the `as const`. */
function constInitializer(name: string): ts.Expression {
  for (const s of source.statements) {
    if (!ts.isVariableStatement(s)) continue;
    for (const d of s.declarationList.declarations) {
      if (ts.isIdentifier(d.name) && d.name.text === name && d.initializer) {
        return ts.isAsExpression(d.initializer) ? d.initializer.expression : d.initializer;
      }
    }
  }
  throw new Error(`protocol/index.ts has no const ${name}`);
}

function stringArray(name: string): string[] {
  const e = constInitializer(name);
  if (!ts.isArrayLiteralExpression(e)) throw new Error(`${name} is not an array literal`);
  return e.elements.map((el) => (el as ts.StringLiteral).text);
}

function closeCodes(): Array<{ name: string; code: number }> {
  const e = constInitializer("CloseCodes");
  if (!ts.isObjectLiteralExpression(e)) throw new Error("CloseCodes is not an object literal");
  return e.properties.map((p) => {
    if (!ts.isPropertyAssignment(p) || !ts.isNumericLiteral(p.initializer)) throw new Error(`CloseCodes: unexpected ${p.getText(source)}`);
    return { name: p.name.getText(source), code: Number(p.initializer.text) };
  });
}

// ---- the AsyncAPI document ------------------------------------------------------------------------

/** Follows local `$ref`s (JSON pointers into the document) to what they name. */
function resolve<T>(value: T | Ref): T {
  const ref = (value as Partial<Ref> | undefined)?.$ref;
  if (typeof ref !== "string") return value as T;
  expect(ref.startsWith("#/"), `only local references: ${ref}`).toBe(true);
  let at: unknown = doc;
  for (const part of ref.slice(2).split("/")) {
    at = (at as Record<string, unknown> | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    expect(at, `unresolved reference ${ref}`).toBeDefined();
  }
  return resolve(at as T | Ref);
}

function kindsOfSchema(schema: Schema | undefined): string[] {
  if (typeof schema?.$ref === "string") return [`ref:${schema.$ref.split("/").pop()}`];
  if (schema?.const !== undefined) return [`literal:${schema.const}`];
  const types = Array.isArray(schema?.type) ? schema.type : [schema?.type];
  return types.map((t) => {
    if (t === "integer") return "number";
    if (t === "array") return `array:${kindsOfSchema(schema?.items).sort().join("|")}`;
    if (t !== undefined && ["string", "number", "boolean", "null", "object"].includes(t)) return t;
    throw new Error(`asyncapi.yaml: no kind for schema ${JSON.stringify(schema)}`);
  });
}

function schemaShape(schema: Schema): Shape {
  const s = resolve(schema);
  const fields: Record<string, string> = {};
  for (const [name, prop] of Object.entries(s.properties ?? {})) fields[name] = kindsOfSchema(prop).sort().join("|");
  return { fields, required: [...(s.required ?? [])].sort() };
}

/** The messages Herald sends (`send` operations and the replies of `receive` ones) and receives. */
function documentMessages(): { server: Map<string, Message>; client: Map<string, Message> } {
  const server = new Map<string, Message>();
  const client = new Map<string, Message>();
  for (const [opName, op] of Object.entries(doc.operations)) {
    expect(["send", "receive"], opName).toContain(op.action);
    for (const ref of op.messages ?? []) (op.action === "send" ? server : client).set(ref.$ref, resolve<Message>(ref));
    if (op.reply) {
      expect(op.action, `${opName}: only client messages get replies here`).toBe("receive");
      for (const ref of op.reply.messages ?? []) server.set(ref.$ref, resolve<Message>(ref));
    }
  }
  return { server, client };
}

const canonical = (shapes: Shape[]) => shapes.map((s) => JSON.stringify({ fields: Object.entries(s.fields).sort(), required: s.required })).sort();
const typeOf = (s: Shape) => s.fields.type!.replace(/^literal:/, "");

// ---- the comparisons ------------------------------------------------------------------------------

describe("docs/asyncapi.yaml agrees with src/protocol/index.ts", () => {
  const { server, client } = documentMessages();

  it("is an AsyncAPI 3.0 document whose channel lists every message its operations use", () => {
    expect(doc.asyncapi).toMatch(/^3\.0\.\d+$/);
    const channel = doc.channels.notifications;
    expect(channel.address).toBe("/ws");
    for (const op of Object.values(doc.operations)) expect(op.channel.$ref).toBe("#/channels/notifications");
    const listed = Object.keys(channel.messages).map((k) => `#/channels/notifications/messages/${k}`).sort();
    expect([...new Set([...server.keys(), ...client.keys()])].sort()).toEqual(listed);
  });

  it.each([
    ["ServerMessage", "sends", "server"],
    ["ClientMessage", "receives", "client"],
  ] as const)("each %s union member is one message Herald %s, with the same fields, required fields and types", (union, _verb, side) => {
    const declared = unionShapes(union);
    const documented = [...(side === "server" ? server : client).values()].map((m) => schemaShape(m.payload));
    // Named first, so a mismatch says which type differs.
    expect(documented.map(typeOf).sort()).toEqual(declared.map(typeOf).sort());
    expect(canonical(documented)).toEqual(canonical(declared));
  });

  it.each(["NotificationDto", "Presentation"])("%s: the same properties, required ones and types (nullable included)", (name) => {
    const declared = interfaceShape(name);
    const documented = schemaShape(doc.components.schemas[name]);
    expect(Object.keys(documented.fields).sort()).toEqual(Object.keys(declared.fields).sort());
    expect(documented.required).toEqual(declared.required);
    expect(documented.fields).toEqual(declared.fields);
  });

  it.each([
    ["Priority", "PRIORITIES"],
    ["DeliveryStatus", "DELIVERY_STATUSES"],
  ])("%s lists %s", (schema, constant) => {
    expect(doc.components.schemas[schema].enum).toEqual(stringArray(constant));
  });

  it("x-close-codes lists every CloseCodes entry, and no other", () => {
    const documented = doc.channels.notifications["x-close-codes"].map(({ code, name, description }) => {
      expect(description, `${code} says what the client should do`).toMatch(/\S/);
      return { code, name };
    });
    const byCode = (a: { code: number }, b: { code: number }) => a.code - b.code;
    expect(documented.sort(byCode)).toEqual(closeCodes().sort(byCode));
  });
});

describe("docs/websocket.md", () => {
  it.each(closeCodes().map((c) => [c.code, c.name]))("mentions close code %i (%s)", (code) => {
    expect(prose).toMatch(new RegExp(`\\b${code}\\b`));
  });

  it("names every message type in both directions", () => {
    const types = [...unionShapes("ServerMessage"), ...unionShapes("ClientMessage")].map(typeOf);
    for (const type of new Set(types)) expect(prose, type).toContain(`"type": "${type}"`);
  });
});
