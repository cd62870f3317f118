/**
 * The few lines of ustar a backup needs: regular files with short names,
 * written and read whole in memory (a backup is one embedded database and a
 * few secrets). `tar tzf herald.tar.gz` lists what this writes.
 */

export interface TarEntry {
  readonly name: string;
  readonly data: Buffer;
}

const BLOCK = 512;

/** One tar archive of regular files, mode 0600. */
export function packTar(entries: readonly TarEntry[], mtime = new Date()): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data } of entries) {
    if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
    const header = Buffer.alloc(BLOCK);
    header.write(name, 0, 100, "utf8");
    header.write(octal(0o600, 8), 100);
    header.write(octal(0, 8), 108);
    header.write(octal(0, 8), 116);
    header.write(octal(data.length, 12), 124);
    header.write(octal(Math.floor(mtime.getTime() / 1000), 12), 136);
    header.write("        ", 148); // the checksum counts its own field as spaces
    header.write("0", 156);
    header.write("ustar\u000000", 257, "latin1");
    header.write(octal(checksum(header), 8), 148);
    parts.push(header, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** The regular files of a tar archive; throws on a header whose checksum is wrong (not a tar). */
export function unpackTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const header = tar.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    if (Number.parseInt(text(header, 148, 8), 8) !== checksum(header)) throw new Error("not a tar archive");
    const size = Number.parseInt(text(header, 124, 12), 8) || 0;
    const prefix = text(header, 345, 155);
    const name = prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100);
    const type = text(header, 156, 1);
    if (type === "0" || type === "") entries.push({ name, data: Buffer.from(tar.subarray(at + BLOCK, at + BLOCK + size)) });
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\u0000`;
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum;
}

function text(header: Buffer, at: number, length: number): string {
  const field = header.subarray(at, at + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString("utf8").trim();
}
