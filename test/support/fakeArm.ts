import { selfSignedCertificate } from './selfSignedCertificate';
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback Azure Resource Manager that speaks the Microsoft.ContainerInstance container-group
 * wire format (api-version 2023-05-01) closely enough for the real @azure/arm-containerinstance SDK:
 * async PUT/DELETE with `Azure-AsyncOperation`, `get` with instance views that progress through a
 * script (the test moves a group to its next step with `advance`, so nothing depends on timing or on
 * how many GETs the client makes), logs, list by resource group, and fault injection.
 *
 * It serves HTTPS with a throwaway self-signed certificate because the SDK's bearer-token policy
 * refuses plain http; tests trust the certificate through `caPem`.
 */
export const FAKE_ARM_API_VERSION = '2023-05-01';

/** One step of a group's life as ARM reports it on GET. */
export type ScriptStep =
  | { kind: 'pending' }
  | { kind: 'running' }
  | { kind: 'exited'; exitCode: number }
  | { kind: 'provisioning-failed'; message: string };

export interface Fault {
  method?: 'GET' | 'PUT' | 'DELETE' | 'POST';
  /** Matched against the request path (without query). */
  pathIncludes?: string;
  status: number;
  code?: string;
  message?: string;
  /** Sent as `Retry-After` (seconds). */
  retryAfterSeconds?: number;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export interface RecordedExchange {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  requestBody: unknown;
  status: number;
  responseText: string;
}

interface StoredGroup {
  name: string;
  resourceGroup: string;
  /** The PUT body as received (holds secure values; never sent back). */
  body: WireGroup;
  script: ScriptStep[];
  step: number;
  getCount: number;
  startTime?: string;
  finishTime?: string;
  logs: string;
  /** Set by POST …/stop, cleared by POST …/start. */
  stopped?: boolean;
}

interface WireContainer {
  name: string;
  properties: {
    image: string;
    resources: { requests: { cpu: number; memoryInGB: number } };
    environmentVariables?: { name: string; value?: string; secureValue?: string }[];
    ports?: { port: number; protocol?: string }[];
  };
}

interface WireGroup {
  location: string;
  tags?: Record<string, string>;
  identity?: { type: string; userAssignedIdentities?: Record<string, object> };
  properties: {
    containers: WireContainer[];
    osType: string;
    restartPolicy?: string;
    imageRegistryCredentials?: { server: string; identity?: string; username?: string; password?: string }[];
    ipAddress?: { type: string; ports: { port: number; protocol?: string }[]; dnsNameLabel?: string };
  };
}

interface AsyncOperation {
  pollsLeft: number;
  outcome: 'Succeeded' | 'Failed';
  error?: { code: string; message: string };
}

export interface FakeArmOptions {
  subscriptionId?: string;
  /** Script for groups without one set through `scriptFor` (default pending → running → exit 0). */
  defaultScript?: ScriptStep[];
  /** Async-operation polls answered InProgress before the final status (default 1). */
  asyncPollsBeforeDone?: number;
}

export interface FakeArm {
  readonly endpoint: string;
  readonly caPem: string;
  readonly subscriptionId: string;
  readonly exchanges: RecordedExchange[];
  scriptFor(groupName: string, script: ScriptStep[]): void;
  /** Moves a group to a later step of its script (stays on the last). */
  advance(groupName: string, steps?: number): void;
  /** Async-operation polls answered InProgress before the final status, for operations started from now on. */
  setAsyncPollsBeforeDone(polls: number): void;
  setLogs(groupName: string, content: string): void;
  inject(fault: Fault): void;
  /** Group names currently stored in a resource group. */
  groupNames(resourceGroup: string): string[];
  /** The stored PUT body of a group (as the SDK serialised it). */
  storedBody(resourceGroup: string, groupName: string): WireGroup | undefined;
  close(): Promise<void>;
}

const DEFAULT_SCRIPT: ScriptStep[] = [
  { kind: 'pending' },
  { kind: 'running' },
  { kind: 'exited', exitCode: 0 },
];
// A fixed clock: progression is driven by GET count, and timestamps must not depend on test speed.
const EPOCH_MS = Date.UTC(2024, 4, 1, 12, 0, 0);

export async function startFakeArm(options: FakeArmOptions = {}): Promise<FakeArm> {
  const subscriptionId = options.subscriptionId ?? '00000000-0000-4000-8000-000000000001';
  const { keyPem, certPem } = selfSignedCertificate();
  const groups = new Map<string, StoredGroup>();
  const scripts = new Map<string, ScriptStep[]>();
  const pendingLogs = new Map<string, string>();
  const operations = new Map<string, AsyncOperation>();
  const faults: (Fault & { left: number })[] = [];
  const exchanges: RecordedExchange[] = [];
  let endpoint = '';
  let asyncPollsBeforeDone = options.asyncPollsBeforeDone ?? 1;

  const key = (rg: string, name: string): string => `${rg.toLowerCase()}/${name}`;
  const resourceId = (rg: string, name: string): string =>
    `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.ContainerInstance/containerGroups/${name}`;

  function newOperation(location: string, op: AsyncOperation): string {
    const id = randomUUID();
    operations.set(id, op);
    return `${endpoint}/subscriptions/${subscriptionId}/providers/Microsoft.ContainerInstance/locations/${location}/operations/${id}?api-version=2018-06-01`;
  }

  function currentStep(group: StoredGroup): ScriptStep {
    return group.script[Math.min(group.step, group.script.length - 1)];
  }

  function timeAt(minutes: number): string {
    return new Date(EPOCH_MS + minutes * 60_000).toISOString();
  }

  /** What ARM returns for a group: no secure values, instance view only when asked (GET). */
  function render(group: StoredGroup, withInstanceView: boolean): Record<string, unknown> {
    const step = currentStep(group);
    const provisioningState = step.kind === 'provisioning-failed' ? 'Failed' : 'Succeeded';
    const containers = group.body.properties.containers.map((c) => {
      const properties: Record<string, unknown> = {
        image: c.properties.image,
        resources: c.properties.resources,
        ports: c.properties.ports ?? [],
        environmentVariables: (c.properties.environmentVariables ?? []).map((e) =>
          e.secureValue !== undefined ? { name: e.name } : { name: e.name, value: e.value },
        ),
      };
      if (withInstanceView) properties.instanceView = containerInstanceView(group, step);
      return { name: c.name, properties };
    });
    const properties: Record<string, unknown> = {
      provisioningState,
      containers,
      osType: group.body.properties.osType,
      restartPolicy: group.body.properties.restartPolicy,
      imageRegistryCredentials: (group.body.properties.imageRegistryCredentials ?? []).map((c) => ({
        server: c.server,
        identity: c.identity,
        username: c.username,
      })),
      sku: 'Standard',
    };
    const ip = group.body.properties.ipAddress;
    if (ip) {
      properties.ipAddress = {
        ...ip,
        ip: '20.50.0.7',
        fqdn: ip.dnsNameLabel ? `${ip.dnsNameLabel}.${group.body.location}.azurecontainer.io` : undefined,
      };
    }
    if (withInstanceView)
      properties.instanceView = group.stopped ? { state: 'Stopped', events: [] } : groupInstanceView(step);
    return {
      id: resourceId(group.resourceGroup, group.name),
      name: group.name,
      type: 'Microsoft.ContainerInstance/containerGroups',
      location: group.body.location,
      tags: group.body.tags ?? {},
      identity: group.body.identity
        ? {
            ...group.body.identity,
            userAssignedIdentities: Object.fromEntries(
              Object.keys(group.body.identity.userAssignedIdentities ?? {}).map((id) => [
                id,
                { principalId: randomUUID(), clientId: randomUUID() },
              ]),
            ),
          }
        : undefined,
      properties,
    };
  }

  function groupInstanceView(step: ScriptStep): Record<string, unknown> {
    switch (step.kind) {
      case 'pending':
        return { state: 'Pending', events: [] };
      case 'running':
        return { state: 'Running', events: [] };
      case 'exited':
        return { state: step.exitCode === 0 ? 'Succeeded' : 'Failed', events: [] };
      case 'provisioning-failed':
        return {
          events: [
            {
              count: 1,
              firstTimestamp: timeAt(0),
              lastTimestamp: timeAt(0),
              name: 'Failed',
              message: step.message,
              type: 'Warning',
            },
          ],
        };
    }
  }

  function containerInstanceView(group: StoredGroup, step: ScriptStep): Record<string, unknown> {
    switch (step.kind) {
      case 'pending':
        return {
          restartCount: 0,
          currentState: { state: 'Waiting', detailStatus: 'Pulling image' },
          events: [],
        };
      case 'running':
        group.startTime ??= timeAt(1);
        return {
          restartCount: 0,
          currentState: { state: 'Running', startTime: group.startTime, detailStatus: '' },
          events: [],
        };
      case 'exited':
        group.startTime ??= timeAt(1);
        group.finishTime ??= timeAt(7);
        return {
          restartCount: 0,
          currentState: {
            state: 'Terminated',
            startTime: group.startTime,
            finishTime: group.finishTime,
            exitCode: step.exitCode,
            detailStatus: step.exitCode === 0 ? 'Completed' : 'Error',
          },
          events: [],
        };
      case 'provisioning-failed':
        return { restartCount: 0, events: [] };
    }
  }

  function send(
    res: ServerResponse,
    exchange: RecordedExchange,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    exchange.status = status;
    exchange.responseText = text;
    exchanges.push(exchange);
    res.writeHead(status, {
      ...(text ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      'x-ms-request-id': randomUUID(),
      ...headers,
    });
    res.end(text);
  }

  function armError(code: string, message: string): { error: { code: string; message: string } } {
    return { error: { code, message } };
  }

  function takeFault(method: string, pathname: string): Fault | undefined {
    const index = faults.findIndex(
      (f) =>
        (f.method === undefined || f.method === method) &&
        (!f.pathIncludes || pathname.includes(f.pathIncludes)),
    );
    if (index < 0) return undefined;
    const fault = faults[index];
    fault.left -= 1;
    if (fault.left <= 0) faults.splice(index, 1);
    return fault;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    let requestBody: unknown = undefined;
    if (raw.length > 0) {
      try {
        requestBody = JSON.parse(raw);
      } catch {
        requestBody = raw;
      }
    }
    const exchange: RecordedExchange = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      requestBody,
      status: 0,
      responseText: '',
    };
    if (!req.headers.authorization?.startsWith('Bearer ')) {
      return send(res, exchange, 401, armError('AuthenticationFailed', 'Authentication failed.'));
    }
    const fault = takeFault(method, url.pathname);
    if (fault) {
      const headers: Record<string, string> =
        fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
      return send(
        res,
        exchange,
        fault.status,
        armError(fault.code ?? `Http${fault.status}`, fault.message ?? `Injected ${fault.status}`),
        headers,
      );
    }

    const operation = url.pathname.match(
      /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.ContainerInstance\/locations\/([^/]+)\/operations\/([^/]+)$/,
    );
    if (operation && method === 'GET') {
      const op = operations.get(operation[3]);
      if (!op) return send(res, exchange, 404, armError('OperationNotFound', 'Unknown operation.'));
      if (op.pollsLeft > 0) {
        op.pollsLeft -= 1;
        return send(res, exchange, 200, { id: operation[3], status: 'InProgress' });
      }
      return send(res, exchange, 200, {
        id: operation[3],
        status: op.outcome,
        ...(op.error ? { error: op.error } : {}),
      });
    }

    if (url.searchParams.get('api-version') !== FAKE_ARM_API_VERSION) {
      return send(
        res,
        exchange,
        400,
        armError(
          'InvalidApiVersionParameter',
          `The api-version '${url.searchParams.get('api-version')}' is invalid.`,
        ),
      );
    }
    const base = `^/subscriptions/${subscriptionId}/resourceGroups/([^/]+)/providers/Microsoft\\.ContainerInstance/containerGroups`;
    const list = url.pathname.match(new RegExp(`${base}$`));
    const one = url.pathname.match(new RegExp(`${base}/([^/]+)$`));
    const logs = url.pathname.match(new RegExp(`${base}/([^/]+)/containers/([^/]+)/logs$`));
    const power = url.pathname.match(new RegExp(`${base}/([^/]+)/(stop|start)$`));
    if (power && method === 'POST') {
      const group = groups.get(key(power[1], power[2]));
      if (!group) {
        return send(
          res,
          exchange,
          404,
          armError('ResourceNotFound', `Container group '${power[2]}' not found.`),
        );
      }
      group.stopped = power[3] === 'stop';
      if (power[3] === 'stop') return send(res, exchange, 204, undefined);
      const asyncUrl = newOperation(group.body.location, {
        pollsLeft: asyncPollsBeforeDone,
        outcome: 'Succeeded',
      });
      return send(res, exchange, 202, undefined, { 'azure-asyncoperation': asyncUrl, location: asyncUrl });
    }

    if (list && method === 'GET') {
      const value = [...groups.values()]
        .filter((g) => g.resourceGroup.toLowerCase() === list[1].toLowerCase())
        .map((g) => render(g, false));
      return send(res, exchange, 200, { value });
    }
    if (logs && method === 'GET') {
      const group = groups.get(key(logs[1], logs[2]));
      if (!group || !group.body.properties.containers.some((c) => c.name === logs[3])) {
        return send(res, exchange, 404, armError('ResourceNotFound', `Container '${logs[3]}' not found.`));
      }
      const tail = url.searchParams.get('tail');
      let content = group.logs;
      if (tail !== null) {
        const lines = content.replace(/\n$/, '').split('\n');
        content = lines.slice(-Number(tail)).join('\n') + (content.endsWith('\n') ? '\n' : '');
      }
      return send(res, exchange, 200, { content });
    }
    if (one) {
      const [, rg, name] = one;
      const existing = groups.get(key(rg, name));
      if (method === 'GET') {
        if (!existing) {
          return send(
            res,
            exchange,
            404,
            armError(
              'ResourceNotFound',
              `The Resource 'Microsoft.ContainerInstance/containerGroups/${name}' was not found.`,
            ),
          );
        }
        existing.getCount += 1;
        return send(res, exchange, 200, render(existing, true));
      }
      if (method === 'PUT') {
        const problem = invalidGroupBody(requestBody);
        if (problem) return send(res, exchange, 400, armError('InvalidRequestContent', problem));
        const body = requestBody as WireGroup;
        const script = scripts.get(name) ?? options.defaultScript ?? DEFAULT_SCRIPT;
        const group: StoredGroup = existing
          ? { ...existing, body }
          : {
              name,
              resourceGroup: rg,
              body,
              script,
              step: 0,
              getCount: 0,
              logs: pendingLogs.get(name) ?? '',
            };
        groups.set(key(rg, name), group);
        const failing =
          script[0]?.kind === 'provisioning-failed' ? (script[0] as { message: string }) : undefined;
        const asyncUrl = newOperation(body.location, {
          pollsLeft: asyncPollsBeforeDone,
          outcome: failing ? 'Failed' : 'Succeeded',
          ...(failing ? { error: { code: 'ProvisioningFailed', message: failing.message } } : {}),
        });
        const rendered = render(group, false);
        (rendered.properties as Record<string, unknown>).provisioningState = 'Pending';
        return send(res, exchange, existing ? 200 : 201, rendered, { 'azure-asyncoperation': asyncUrl });
      }
      if (method === 'DELETE') {
        if (!existing) return send(res, exchange, 204, undefined);
        groups.delete(key(rg, name));
        const asyncUrl = newOperation(existing.body.location, {
          pollsLeft: asyncPollsBeforeDone,
          outcome: 'Succeeded',
        });
        return send(res, exchange, 202, undefined, { 'azure-asyncoperation': asyncUrl, location: asyncUrl });
      }
    }
    return send(
      res,
      exchange,
      404,
      armError('NoRegisteredProviderFound', `No route for ${method} ${url.pathname}.`),
    );
  }

  const server = https.createServer({ key: keyPem, cert: certPem }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500);
      res.end(JSON.stringify(armError('FakeArmBug', String(error))));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    caPem: certPem,
    subscriptionId,
    exchanges,
    scriptFor: (groupName, script) => {
      if (script.length === 0) throw new Error('a script needs at least one step');
      scripts.set(groupName, script);
    },
    advance: (groupName, steps = 1) => {
      const matching = [...groups.values()].filter((g) => g.name === groupName);
      if (matching.length === 0) throw new Error(`fake ARM has no group ${groupName}`);
      for (const g of matching) g.step = Math.min(g.step + steps, g.script.length - 1);
    },
    setAsyncPollsBeforeDone: (polls) => {
      asyncPollsBeforeDone = polls;
    },
    setLogs: (groupName, content) => {
      pendingLogs.set(groupName, content);
      for (const g of groups.values()) if (g.name === groupName) g.logs = content;
    },
    inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
    groupNames: (rg) =>
      [...groups.values()]
        .filter((g) => g.resourceGroup.toLowerCase() === rg.toLowerCase())
        .map((g) => g.name),
    storedBody: (rg, name) => groups.get(key(rg, name))?.body,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The checks ARM's schema validation makes that matter to us; returns a message or undefined. */
function invalidGroupBody(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null)
    return 'The request content was invalid and could not be deserialized.';
  const group = body as Partial<WireGroup>;
  if (typeof group.location !== 'string') return "Required property 'location' not found in JSON.";
  const props = group.properties;
  if (!props || !Array.isArray(props.containers) || props.containers.length === 0) {
    return "Required property 'containers' not found in JSON.";
  }
  if (props.osType !== 'Linux' && props.osType !== 'Windows')
    return "Required property 'osType' not found in JSON.";
  for (const c of props.containers) {
    if (!c.name || !c.properties?.image) return 'Each container needs a name and an image.';
    const requests = c.properties.resources?.requests;
    if (typeof requests?.cpu !== 'number' || typeof requests.memoryInGB !== 'number') {
      return 'Each container needs resources.requests.cpu and memoryInGB.';
    }
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
