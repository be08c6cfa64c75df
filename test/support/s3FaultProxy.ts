/**
 * An HTTP proxy between the worker and the S3 gateway, to fail object storage the way real S3 fails:
 * throttling (503 SlowDown), internal errors (500), answers that come too late, connections that close
 * without an answer. It can also run a step at an exact point of a request: once the gateway has done
 * it but before the worker hears so (to kill the worker between an object stored and its catalog row).
 *
 * Requests are forwarded as they stream in, with the Host header the client sent: SigV4 signs it, and the
 * gateway checks the signature against the Host it receives. The worker uses path-style addressing
 * (`/<bucket>/<key>`), which is what the gateway of the tests answers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type S3RequestKind = 'putObject' | 'getObject' | 'headObject' | 'deleteObject' | 'deleteObjects' | 'listObjects' | 'other';

export interface S3ProxyRequest {
  /** Order of arrival at the proxy, from 1. */
  readonly seq: number;
  readonly kind: S3RequestKind;
  readonly method: string;
  /** The object's key, decoded; null for a request on the bucket itself. */
  readonly key: string | null;
  /** The keys a DeleteObjects request names, once its body has arrived (always before the gateway answers it). */
  readonly deleteKeys: readonly string[];
}

export type S3Fault =
  /** 503 SlowDown, S3's throttling answer: the SDK retries it with its throttling backoff. */
  | { kind: 'slowDown' }
  /** 500 InternalError: retried as a transient error. */
  | { kind: 'internalError' }
  /** Forwarded, and the gateway's answer held back `ms` before it goes on: the gateway has done the work. */
  | { kind: 'late'; ms: number }
  /** Not forwarded: the connection is closed without an answer. */
  | { kind: 'reset' };

export type S3FaultKind = S3Fault['kind'];

export interface S3ProxyRules {
  /** Before a request is forwarded: a fault to meet it with instead, or null to forward it as it is. */
  fault?(req: S3ProxyRequest): S3Fault | null | Promise<S3Fault | null>;
  /**
   * Once the gateway has answered a forwarded request, before the answer goes on. While it runs, no
   * other answer reaches the client either, so a step taken here (a SIGKILL) lands exactly after this
   * request and before the client learns of anything newer.
   */
  answered?(req: S3ProxyRequest, status: number): void | Promise<void>;
}

export interface S3ProxyCounts {
  /** Requests received, by kind. */
  requests: Record<S3RequestKind, number>;
  /** Faults injected, by kind. */
  faults: Record<S3FaultKind, number>;
  /** Late answers the client stopped waiting for (it closed the connection first), and those it was still waiting for. */
  late: { abandoned: number; waitedFor: number };
  /** Requests forwarded that met no gateway (it was down): their connections were closed without an answer. */
  unreachable: number;
}

export interface S3FaultProxy {
  /** http://127.0.0.1:port, for the worker's S3_ENDPOINT. */
  readonly endpoint: string;
  /** Replaces the rules; `{}` forwards everything untouched. */
  use(rules: S3ProxyRules): void;
  /** The seq of the latest request to arrive: rules armed now can tell later requests from those already under way. */
  lastSeq(): number;
  /** Counts since the proxy started or since the last reset. */
  counts(): S3ProxyCounts;
  resetCounts(): void;
  close(): Promise<void>;
}

const SLOW_DOWN_BODY =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
const INTERNAL_ERROR_BODY =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>';

/** Headers of one hop only; `expect` is not signed, and the proxy answers it itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'expect']);

function emptyCounts(): S3ProxyCounts {
  return {
    requests: { putObject: 0, getObject: 0, headObject: 0, deleteObject: 0, deleteObjects: 0, listObjects: 0, other: 0 },
    faults: { slowDown: 0, internalError: 0, late: 0, reset: 0 },
    late: { abandoned: 0, waitedFor: 0 },
    unreachable: 0,
  };
}

function classifyS3Request(method: string, url: string): { kind: S3RequestKind; key: string | null } {
  const parsed = new URL(url, 'http://proxy');
  const slash = parsed.pathname.indexOf('/', 1);
  const rawKey = slash < 0 ? '' : parsed.pathname.slice(slash + 1);
  const key = rawKey ? decodeURIComponent(rawKey) : null;
  const q = parsed.searchParams;
  if (key === null) {
    if (method === 'POST' && q.has('delete')) return { kind: 'deleteObjects', key };
    if (method === 'GET' && (q.get('list-type') === '2' || q.has('prefix') || [...q.keys()].length === 0))
      return { kind: 'listObjects', key };
    return { kind: 'other', key };
  }
  if (q.has('uploadId') || q.has('partNumber') || q.has('uploads')) return { kind: 'other', key };
  const byMethod: Record<string, S3RequestKind> = { PUT: 'putObject', GET: 'getObject', HEAD: 'headObject', DELETE: 'deleteObject' };
  return { kind: byMethod[method] ?? 'other', key };
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function deleteKeysOf(xml: string): string[] {
  return [...xml.matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) =>
    m[1].replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (all, e: string) =>
      e.startsWith('#x') || e.startsWith('#X')
        ? String.fromCodePoint(parseInt(e.slice(2), 16))
        : e.startsWith('#')
          ? String.fromCodePoint(Number(e.slice(1)))
          : (XML_ENTITIES[e] ?? all),
    ),
  );
}

function errorAnswer(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': `FAULT${Date.now().toString(16).toUpperCase()}`,
  });
  res.end(body);
}

/** Starts a proxy on a free loopback port in front of `upstream` (the gateway's http://host:port). */
export async function startS3FaultProxy(upstream: string): Promise<S3FaultProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let rules: S3ProxyRules = {};
  let counts = emptyCounts();
  let arrivals = 0;
  // Set while an `answered` step runs: every other answer waits for it.
  let holding: Promise<void> | null = null;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const { kind, key } = classifyS3Request(req.method ?? 'GET', req.url ?? '/');
    const deleteKeys: string[] = [];
    const info: S3ProxyRequest = { seq: ++arrivals, kind, method: req.method ?? 'GET', key, deleteKeys };
    counts.requests[kind] += 1;
    let clientGone = false;
    res.once('close', () => (clientGone = !res.writableFinished));
    req.on('error', () => undefined);
    res.on('error', () => undefined);

    // Decided before anything reads the body: a listener attached now would start it flowing unforwarded.
    const fault = await rules.fault?.(info);
    if (fault) counts.faults[fault.kind] += 1;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'slowDown' || fault?.kind === 'internalError') {
      // Answered once the body is in, as a server does that reads a request before refusing it.
      req.once('end', () =>
        fault.kind === 'slowDown' ? errorAnswer(res, 503, SLOW_DOWN_BODY) : errorAnswer(res, 500, INTERNAL_ERROR_BODY),
      );
      req.resume();
      return;
    }

    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    const up = http.request({
      agent,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
      setHost: false,
    });
    let gotAnswer = false;
    // A client that dies mid-body leaves the gateway a broken request, which it discards.
    req.once('close', () => {
      if (!req.complete) up.destroy();
    });
    up.once('error', () => {
      if (!gotAnswer) counts.unreachable += 1;
      req.socket.destroy();
    });
    up.once('response', (answer) => {
      gotAnswer = true;
      void (async () => {
        const status = answer.statusCode ?? 502;
        while (holding) await holding;
        if (rules.answered) {
          const step = Promise.resolve(rules.answered(info, status)).then(
            () => undefined,
            () => undefined,
          );
          holding = step;
          await step;
          holding = null;
        }
        if (fault?.kind === 'late') {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, fault.ms);
            res.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
          });
          if (clientGone) counts.late.abandoned += 1;
          else counts.late.waitedFor += 1;
        }
        if (clientGone || res.destroyed) {
          answer.resume();
          return;
        }
        const raw: string[] = [];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) {
          if (!HOP_BY_HOP.has(answer.rawHeaders[i].toLowerCase())) raw.push(answer.rawHeaders[i], answer.rawHeaders[i + 1]);
        }
        res.writeHead(status, answer.statusMessage, raw);
        answer.pipe(res);
      })();
    });
    if (kind === 'deleteObjects') {
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.once('end', () => deleteKeys.push(...deleteKeysOf(Buffer.concat(body).toString('utf8'))));
    }
    req.pipe(up);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    use(next) {
      rules = next;
    },
    lastSeq: () => arrivals,
    counts: () => structuredClone(counts),
    resetCounts() {
      counts = emptyCounts();
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
    },
  };
}
