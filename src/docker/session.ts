/**
 * A BuildKit session that answers registry credential requests, so that BuildKit can pull private base
 * images and `cache-from` images. The engine's POST /session is upgraded to h2c; over it the engine is the
 * gRPC client and we serve:
 *   /moby.filesync.v1.Auth/Credentials  (CredentialsRequest{Host=1} → CredentialsResponse{Username=1, Secret=2})
 *   /grpc.health.v1.Health/Check        (→ HealthCheckResponse{status=SERVING})
 * Everything else answers UNIMPLEMENTED, which makes BuildKit fall back (FetchToken → Credentials).
 * Credentials cross the engine's socket only; they never reach a command line or the log.
 */
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import type { CredentialStore } from '../registry/auth.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function strField(no: number, s: string | undefined): Buffer {
  if (!s) return Buffer.alloc(0);
  const b = Buffer.from(s);
  return Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
}

function readHost(msg: Buffer): string {
  let i = 0;
  const rv = () => {
    let r = 0;
    let shift = 0;
    for (;;) {
      const b = msg[i++];
      r |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7;
    }
  };
  while (i < msg.length) {
    const key = rv();
    if ((key & 7) === 2) {
      const len = rv();
      if (key >>> 3 === 1) return msg.subarray(i, i + len).toString();
      i += len;
    } else if ((key & 7) === 0) rv();
    else break;
  }
  return '';
}

function frame(msg: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

const METHODS = ['/moby.filesync.v1.Auth/Credentials', '/grpc.health.v1.Health/Check'];

export interface Session {
  id: string;
  close(): void;
}

/** open a session on the engine; resolves when the engine has accepted it */
export function openSession(docker: Docker, creds: CredentialStore, debug: (m: string) => void): Promise<Session> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: '/session',
        method: 'POST',
        hijack: true,
        headers: {
          Upgrade: 'h2c',
          'X-Docker-Expose-Session-Uuid': id,
          'X-Docker-Expose-Session-Name': 'gitops-ci',
          'X-Docker-Expose-Session-Sharedkey': '',
          'X-Docker-Expose-Session-Grpc-Method': METHODS,
        },
        statusCodes: { 101: true, 200: true, 500: 'server error' },
      } as never,
      (err: unknown, socket: unknown) => {
        if (err) return reject(err);
        const sock = socket as Duplex;
        const server = http2.createServer();
        server.on('stream', (stream, headers) => {
          const path = String(headers[':path'] ?? '');
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', () => undefined);
          stream.on('end', () => {
            const body = Buffer.concat(chunks);
            const msg = body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : Buffer.alloc(0);
            let reply: Buffer | undefined;
            if (path === METHODS[0]) {
              const host = readHost(msg);
              const c = creds.get(host);
              debug(`BuildKit asked for credentials for ${host}: ${c ? `from ${c.source}` : 'none'}`);
              reply = c?.username ? Buffer.concat([strField(1, c.username), strField(2, c.password)]) : Buffer.alloc(0);
            } else if (path === METHODS[1]) {
              reply = Buffer.from([0x08, 0x01]); // status: SERVING
            }
            try {
              if (reply) {
                stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
                stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
                stream.end(frame(reply));
              } else {
                stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unimplemented' }, { endStream: true });
              }
            } catch {
              /* stream gone */
            }
          });
        });
        server.on('sessionError', () => undefined);
        sock.on('error', () => undefined);
        server.emit('connection', sock);
        resolve({
          id,
          close: () => {
            try {
              server.close();
              sock.destroy();
            } catch {
              /* already closed */
            }
          },
        });
      },
    );
  });
}
