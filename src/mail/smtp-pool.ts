/**
 * Herald's own SMTP connection pool, over nodemailer's documented
 * SMTPConnection (nodemailer.com/extras/smtp-connection: connect, login,
 * send, close; 'error' closes the connection, 'end' follows every close).
 *
 * Owned here, not borrowed from nodemailer's pool, for three promises the
 * digests' lease and the retry accounting depend on, which nodemailer's pool
 * keeps only through internals (the untyped, undocumented `maxRequeues`, and
 * the moment it happens to instantiate a message's stream transforms):
 *
 * - A message is carried by one connection at most. A connection that fails
 *   under it (dropped mid-DATA, timed out waiting for the reply) fails that
 *   message; it is never sent again on another connection, since the server
 *   may have taken it already (RFC 1047). The caller owns the retry.
 * - The sender's fence (`mayStart`) is asked when a ready connection takes
 *   the message, just before MAIL FROM, however long it waited in the queue.
 *   A fenced message sends no byte and leaves the connection usable.
 * - A send that fails before any connection took it (refused, no greeting in
 *   time, login refused, pool closed) rejects with MailUnreachedError: the
 *   server never saw it, so it is no delivery attempt.
 *
 * Connections open on demand up to `maxConnections`, are reused for every
 * message that follows, and leave the pool when they close (the server's
 * idle timeout, our socket timeout, any failed transaction).
 */
import type { Socket } from "node:net";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { MailFencedError, MailUnreachedError } from "./errors.js";

export interface SmtpPoolOptions {
  /** Host, port, TLS and timeouts of every connection. */
  connection: SMTPConnection.Options;
  /** Logged in with after every connect, when set. */
  auth?: SMTPConnection.Credentials;
  maxConnections: number;
}

export type SmtpEnvelope = SMTPConnection.Envelope;
export type SmtpSent = SMTPConnection.SentMessageInfo;

interface Job {
  envelope: SmtpEnvelope;
  raw: Buffer;
  mayStart: () => boolean;
  resolve: (info: SmtpSent) => void;
  reject: (err: unknown) => void;
}

export class SmtpPool {
  private readonly waiting: Job[] = [];
  private readonly idle: Connection[] = [];
  /** Connections opening, carrying a message, or idle. */
  private count = 0;
  private closed = false;

  constructor(private readonly options: SmtpPoolOptions) {}

  /** Sends `raw` (a complete RFC 5322 message) to the envelope's recipients on the next free connection. */
  send(envelope: SmtpEnvelope, raw: Buffer, mayStart: () => boolean = () => true): Promise<SmtpSent> {
    return new Promise<SmtpSent>((resolve, reject) => {
      if (this.closed) return reject(new MailUnreachedError(new Error("the mailer is closed")));
      this.waiting.push({ envelope, raw, mayStart, resolve, reject });
      this.dispatch();
    });
  }

  /** Refuses new and queued messages, closes idle connections; a message in flight finishes, then its connection closes. */
  close(): void {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new MailUnreachedError(new Error("the mailer was closed")));
    for (const connection of this.idle.splice(0)) connection.close();
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const idle = this.idle.pop();
      if (idle) {
        idle.whenLost(undefined);
        void this.carry(idle, this.waiting.shift()!);
      } else if (this.count < this.options.maxConnections) {
        // The message waits for this connection: if it cannot be opened, that message fails (and only it).
        this.count++;
        void this.openFor(this.waiting.shift()!);
      } else return;
    }
  }

  private async openFor(job: Job): Promise<void> {
    let connection: Connection;
    try {
      connection = await Connection.open(this.options);
    } catch (err) {
      this.count--;
      job.reject(new MailUnreachedError(err));
      this.dispatch();
      return;
    }
    await this.carry(connection, job);
  }

  /** Sends `first`, then whatever waits, on `connection`; then parks it idle or lets it go. */
  private async carry(connection: Connection, first: Job): Promise<void> {
    let job: Job | undefined = first;
    while (job) {
      // Only a connection lost between its opening and its first message: nothing of it was sent.
      if (!connection.usable) {
        job.reject(new MailUnreachedError(connection.lostWith));
        break;
      }
      await this.transact(connection, job);
      job = this.closed || !connection.usable ? undefined : this.waiting.shift();
    }
    if (connection.usable && !this.closed) {
      // The queue is empty: wait here for the next message, unless the server or the socket timeout ends it first.
      this.idle.push(connection);
      connection.whenLost(() => {
        const i = this.idle.indexOf(connection);
        if (i >= 0) this.idle.splice(i, 1);
        this.count--;
      });
    } else {
      connection.close();
      this.count--;
      this.dispatch();
    }
  }

  private async transact(connection: Connection, job: Job): Promise<void> {
    try {
      if (!job.mayStart()) return job.reject(new MailFencedError());
    } catch (err) {
      return job.reject(new MailUnreachedError(err));
    }
    try {
      job.resolve(await connection.send(job.envelope, job.raw));
    } catch (err) {
      // The transaction started, so the server may hold the message: it fails here and never moves to another connection.
      job.reject(err);
      // After a refusal the session's state is unknown (an envelope half set): the next message gets a fresh connection.
      connection.close();
    }
  }
}

/** One SMTPConnection, with its loss (the 'error' or 'end' event) delivered to whoever is using it. */
class Connection {
  private lost: unknown;
  private onLoss: ((err: unknown) => void) | undefined;

  private constructor(private readonly smtp: SMTPConnection) {
    smtp.on("error", (err) => this.lose(err));
    smtp.on("end", () => this.lose(Object.assign(new Error("Connection closed"), { code: "ECONNECTION" })));
  }

  /** Connected (greeting, EHLO, STARTTLS unless ignored) and logged in when credentials are set. */
  static open(options: SmtpPoolOptions): Promise<Connection> {
    const connection = new Connection(new SMTPConnection(options.connection));
    return new Promise<Connection>((resolve, reject) => {
      const fail = (err: unknown) => {
        connection.onLoss = undefined;
        connection.close();
        reject(err);
      };
      connection.onLoss = fail;
      connection.smtp.connect((err) => {
        if (err) return fail(err);
        if (!connection.usable) return;
        connection.sendWithoutDelay();
        if (!options.auth) {
          connection.onLoss = undefined;
          return resolve(connection);
        }
        connection.smtp.login({ credentials: options.auth }, (loginErr) => {
          if (loginErr) return fail(loginErr);
          connection.onLoss = undefined;
          resolve(connection);
        });
      });
    });
  }

  get usable(): boolean {
    return this.lost === undefined;
  }

  /**
   * TCP_NODELAY on the connection's socket. SMTPConnection writes a message's
   * body and then its "\r\n.\r\n" terminator as two writes; with Nagle's
   * algorithm on (Node's default for net sockets) the terminator waits for
   * the server's ACK of the body, which a Linux server delays by ~40 ms:
   * every message cost 40 ms of idle time, ~110 messages/s over 5 loopback
   * connections against ~1,400 with it (bench/RESULTS.md). nodemailer takes
   * no option for it, so it is set on the socket SMTPConnection opened (a
   * STARTTLS socket passes it to the TCP socket under it).
   */
  sendWithoutDelay(): void {
    (this.smtp as unknown as { _socket?: Socket })._socket?.setNoDelay(true);
  }

  /** Why the connection ended (undefined while usable). */
  get lostWith(): unknown {
    return this.lost;
  }

  /** One transaction: settles on the server's reply, or on the connection's loss (SMTPConnection then never calls back). */
  send(envelope: SmtpEnvelope, raw: Buffer): Promise<SmtpSent> {
    return new Promise<SmtpSent>((resolve, reject) => {
      if (!this.usable) return reject(this.lost);
      this.onLoss = reject;
      this.smtp.send(envelope, raw, (err, info) => {
        this.onLoss = undefined;
        if (err) reject(err);
        else resolve(info);
      });
    });
  }

  /** Called once if the connection is lost while it sits idle (undefined when it is taken again). */
  whenLost(callback: (() => void) | undefined): void {
    this.onLoss = callback;
  }

  close(): void {
    this.lose(Object.assign(new Error("Connection closed by Herald"), { code: "ECONNECTION" }));
    this.smtp.close();
  }

  private lose(err: unknown): void {
    if (this.lost !== undefined) return;
    this.lost = err ?? new Error("Connection lost");
    const onLoss = this.onLoss;
    this.onLoss = undefined;
    onLoss?.(this.lost);
  }
}
