/** A local HTTP server standing in for Resend's API, reached through RESEND_BASE_URL. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedEmail {
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  body: { from: string; to: string[]; subject: string; text?: string; html?: string };
}

export interface FakeResend {
  baseUrl: string;
  received: ReceivedEmail[];
  /** Number of upcoming POST /emails to answer with a 500, to exercise retries. */
  failNext(count: number): void;
  close(): Promise<void>;
}

export async function startFakeResend(): Promise<FakeResend> {
  const received: ReceivedEmail[] = [];
  const seenKeys = new Map<string, string>();
  let failures = 0;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method !== 'POST' || req.url !== '/emails') {
        res.writeHead(404).end(JSON.stringify({ name: 'not_found', message: `${req.method} ${req.url}` }));
        return;
      }
      if (failures > 0) {
        failures--;
        res.writeHead(500).end(JSON.stringify({ name: 'internal_server_error', message: 'try again' }));
        return;
      }
      const key = req.headers['idempotency-key'] as string | undefined;
      // Like Resend: a repeated idempotency key returns the first e-mail instead of sending another.
      if (key && seenKeys.has(key)) {
        res.writeHead(200).end(JSON.stringify({ id: seenKeys.get(key) }));
        return;
      }
      const id = `email_${received.length + 1}`;
      if (key) seenKeys.set(key, id);
      received.push({ idempotencyKey: key, authorization: req.headers.authorization, body: JSON.parse(raw) as ReceivedEmail['body'] });
      res.writeHead(200).end(JSON.stringify({ id }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    received,
    failNext: (n) => {
      failures = n;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
