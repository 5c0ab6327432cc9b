import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { selfSignedCertificate } from './selfSignedCertificate';

/**
 * The parts of ARM's wire format every loopback fake control plane shares (ACI, Container Apps):
 * the error body, a JSON answer with a request id, and an HTTPS listener with a trusted test CA.
 */
export function armError(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Writes an ARM JSON answer; returns the text sent, for the fake's exchange log. */
export function writeArmAnswer(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): string {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { 'content-type': 'application/json; charset=utf-8' } : {}),
    'x-ms-request-id': randomUUID(),
    ...headers,
  });
  res.end(text);
  return text;
}

/** Listens on a free loopback port over HTTPS; a handler that throws answers 500 FakeArmBug. */
export async function listenArm(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<{ server: Server; endpoint: string; caPem: string }> {
  const { keyPem, certPem } = selfSignedCertificate();
  const server = https.createServer({ key: keyPem, cert: certPem }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500);
      res.end(JSON.stringify(armError('FakeArmBug', String(error))));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caPem: certPem };
}
