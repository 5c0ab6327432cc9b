import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { armError, listenArm, writeArmAnswer } from './armWire';

/**
 * A loopback Azure Resource Manager for Microsoft.App/containerApps (api-version 2025-07-01, what
 * @azure/arm-appcontainers 3.0.0 sends), shaped after the examples in Azure/azure-rest-api-specs
 * (specification/app/resource-manager/Microsoft.App/ContainerApps/stable/2025-07-01/examples:
 * ContainerApps_CreateOrUpdate.json, ContainerApps_Get.json, ContainerApps_Delete.json, Revisions_Get.json):
 * PUT answers 201/200 with `provisioningState: InProgress` and an `Azure-AsyncOperation` URL, GET
 * returns the app with `latestRevisionName`/`latestReadyRevisionName` and ingress fqdn, secrets come
 * back without values, revisions progress through a per-app script that the test advances, DELETE
 * answers 202 + polling URLs (204 when nothing is there), and faults can be injected.
 */
export const FAKE_APPS_API_VERSION = '2025-07-01';

export type RevisionStep = 'provisioning' | 'ready' | 'failed' | 'unhealthy';

export interface AppsFault {
  method?: 'GET' | 'PUT' | 'DELETE';
  pathIncludes?: string;
  status: number;
  retryAfterSeconds?: number;
  times?: number;
}

export interface AppsExchange {
  method: string;
  path: string;
  status: number;
  requestBody: unknown;
  responseText: string;
}

interface StoredApp {
  name: string;
  resourceGroup: string;
  body: WireApp;
  revisionNumber: number;
  script: RevisionStep[];
  step: number;
  provisioning: 'InProgress' | 'Succeeded' | 'Failed';
}

interface WireApp {
  location: string;
  tags?: Record<string, string>;
  identity?: { type: string; userAssignedIdentities?: Record<string, object> };
  properties: {
    environmentId?: string;
    configuration?: {
      ingress?: Record<string, unknown>;
      secrets?: { name: string; keyVaultUrl?: string; identity?: string; value?: string }[];
      [key: string]: unknown;
    };
    template?: {
      containers?: { name?: string; image?: string; resources?: { cpu?: number; memory?: string } }[];
      [k: string]: unknown;
    };
  };
}

export interface FakeContainerAppsArm {
  endpoint: string;
  caPem: string;
  subscriptionId: string;
  exchanges: AppsExchange[];
  /** Revision steps for the next revisions of an app (default: provisioning, then ready). */
  scriptFor(appName: string, script: RevisionStep[]): void;
  /** Moves the app's newest revision to its next scripted step. */
  advance(appName: string): void;
  /** Makes the provisioning of the next PUT of this app fail (the async operation ends Failed). */
  failProvisioning(appName: string): void;
  inject(fault: AppsFault): void;
  appNames(): string[];
  storedBody(appName: string): WireApp | undefined;
  close(): Promise<void>;
}

export async function startFakeContainerAppsArm(): Promise<FakeContainerAppsArm> {
  const subscriptionId = '00000000-0000-4000-8000-0000000000ca';
  const apps = new Map<string, StoredApp>();
  const scripts = new Map<string, RevisionStep[]>();
  const failing = new Set<string>();
  const operations = new Map<
    string,
    { app: string; kind: 'put' | 'delete'; polls: number; outcome: 'Succeeded' | 'Failed' }
  >();
  const faults: (AppsFault & { left: number })[] = [];
  const exchanges: AppsExchange[] = [];
  let endpoint = '';

  const revisionName = (app: StoredApp): string => `${app.name}--r${app.revisionNumber}`;
  const fqdnOf = (app: StoredApp): string =>
    `${app.name}.kindfield-1a2b3c4d.${app.body.location.replace(/\s+/g, '').toLowerCase()}.azurecontainerapps.io`;
  const stepOf = (app: StoredApp): RevisionStep => app.script[Math.min(app.step, app.script.length - 1)];

  function render(app: StoredApp): Record<string, unknown> {
    const config = app.body.properties.configuration ?? {};
    const ready = app.provisioning === 'Succeeded' && stepOf(app) === 'ready';
    return {
      id: `/subscriptions/${subscriptionId}/resourceGroups/${app.resourceGroup}/providers/Microsoft.App/containerApps/${app.name}`,
      name: app.name,
      type: 'Microsoft.App/containerApps',
      location: app.body.location,
      tags: app.body.tags ?? {},
      identity: app.body.identity
        ? {
            type: app.body.identity.type,
            userAssignedIdentities: Object.fromEntries(
              Object.keys(app.body.identity.userAssignedIdentities ?? {}).map((id) => [
                id,
                { principalId: randomUUID(), clientId: randomUUID() },
              ]),
            ),
          }
        : undefined,
      properties: {
        provisioningState: app.provisioning,
        runningStatus: 'Running',
        managedEnvironmentId: app.body.properties.environmentId,
        environmentId: app.body.properties.environmentId,
        latestRevisionName: revisionName(app),
        latestReadyRevisionName: ready
          ? revisionName(app)
          : app.revisionNumber > 1
            ? `${app.name}--r${app.revisionNumber - 1}`
            : undefined,
        latestRevisionFqdn: `${revisionName(app)}.kindfield-1a2b3c4d.azurecontainerapps.io`,
        configuration: {
          ...config,
          // Secret values are never returned; Key Vault references are.
          secrets: (config.secrets ?? []).map((s) => ({
            name: s.name,
            keyVaultUrl: s.keyVaultUrl,
            identity: s.identity,
          })),
          ingress: config.ingress ? { ...config.ingress, fqdn: fqdnOf(app) } : undefined,
        },
        template: app.body.properties.template,
      },
    };
  }

  function renderRevision(app: StoredApp): Record<string, unknown> {
    const step = stepOf(app);
    return {
      id: `/subscriptions/${subscriptionId}/resourceGroups/${app.resourceGroup}/providers/Microsoft.App/containerApps/${app.name}/revisions/${revisionName(app)}`,
      name: revisionName(app),
      type: 'Microsoft.App/containerApps/revisions',
      properties: {
        createdTime: '2026-12-03T09:00:00Z',
        fqdn: `${revisionName(app)}.kindfield-1a2b3c4d.azurecontainerapps.io`,
        template: app.body.properties.template,
        active: true,
        replicas: 0,
        trafficWeight: 100,
        healthState: step === 'ready' ? 'Healthy' : step === 'unhealthy' ? 'Unhealthy' : 'None',
        provisioningState:
          step === 'ready' || step === 'unhealthy'
            ? 'Provisioned'
            : step === 'failed'
              ? 'Failed'
              : 'Provisioning',
        provisioningError: step === 'failed' ? 'Image pull failed: manifest unknown' : undefined,
        runningState: step === 'ready' ? 'Running' : step === 'failed' ? 'Failed' : 'Processing',
      },
    };
  }

  function send(
    res: ServerResponse,
    exchange: Omit<AppsExchange, 'status' | 'responseText'>,
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ): void {
    exchanges.push({ ...exchange, status, responseText: writeArmAnswer(res, status, body, headers) });
  }

  function operationUrl(app: string, kind: 'put' | 'delete', outcome: 'Succeeded' | 'Failed'): string {
    const id = randomUUID();
    operations.set(id, { app, kind, polls: 1, outcome });
    return `${endpoint}/subscriptions/${subscriptionId}/providers/Microsoft.App/locations/westeurope/containerappOperationStatuses/${id}?api-version=${FAKE_APPS_API_VERSION}`;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    const raw = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
    const requestBody: unknown = raw ? JSON.parse(raw) : undefined;
    const exchange = { method, path: url.pathname, requestBody };
    if (!req.headers.authorization?.startsWith('Bearer '))
      return send(res, exchange, 401, armError('AuthenticationFailed', 'Authentication failed.'));
    const faultIndex = faults.findIndex(
      (f) =>
        (f.method === undefined || f.method === method) &&
        (!f.pathIncludes || url.pathname.includes(f.pathIncludes)),
    );
    if (faultIndex >= 0) {
      const fault = faults[faultIndex];
      if (--fault.left <= 0) faults.splice(faultIndex, 1);
      return send(
        res,
        exchange,
        fault.status,
        armError(`Http${fault.status}`, `Injected ${fault.status}`),
        fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
      );
    }
    const op = url.pathname.match(/\/containerappOperationStatuses\/([^/]+)$/);
    if (op && method === 'GET') {
      const o = operations.get(op[1]);
      if (!o) return send(res, exchange, 404, armError('OperationNotFound', 'Unknown operation.'));
      if (o.polls-- > 0) return send(res, exchange, 200, { id: op[1], status: 'InProgress' });
      const app = apps.get(o.app);
      if (o.kind === 'put' && app) app.provisioning = o.outcome;
      if (o.kind === 'delete') apps.delete(o.app);
      return send(res, exchange, 200, {
        id: op[1],
        status: o.outcome,
        ...(o.outcome === 'Failed'
          ? {
              error: {
                code: 'ContainerAppOperationError',
                message: 'Failed to provision revision: image pull failed',
              },
            }
          : {}),
      });
    }
    if (url.searchParams.get('api-version') !== FAKE_APPS_API_VERSION) {
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
    const base = `^/subscriptions/${subscriptionId}/resourceGroups/([^/]+)/providers/Microsoft\\.App/containerApps`;
    const list = url.pathname.match(new RegExp(`${base}$`));
    const one = url.pathname.match(new RegExp(`${base}/([^/]+)$`));
    const revision = url.pathname.match(new RegExp(`${base}/([^/]+)/revisions/([^/]+)$`));
    if (list && method === 'GET') {
      return send(res, exchange, 200, {
        value: [...apps.values()].filter((a) => a.resourceGroup === list[1]).map(render),
      });
    }
    if (revision && method === 'GET') {
      const app = apps.get(revision[2]);
      if (!app || revisionName(app) !== revision[3])
        return send(
          res,
          exchange,
          404,
          armError('ContainerAppRevisionNotFound', `Revision '${revision[3]}' not found.`),
        );
      return send(res, exchange, 200, renderRevision(app));
    }
    if (one) {
      const [, rg, name] = one;
      const existing = apps.get(name);
      if (method === 'GET') {
        if (!existing)
          return send(
            res,
            exchange,
            404,
            armError(
              'ResourceNotFound',
              `The Resource 'Microsoft.App/containerApps/${name}' under resource group '${rg}' was not found.`,
            ),
          );
        return send(res, exchange, 200, render(existing));
      }
      if (method === 'PUT') {
        const body = requestBody as WireApp;
        const problem = invalidApp(body);
        if (problem) return send(res, exchange, 400, armError('ContainerAppInvalidSpec', problem));
        const app: StoredApp = existing
          ? {
              ...existing,
              body,
              revisionNumber: existing.revisionNumber + 1,
              step: 0,
              provisioning: 'InProgress',
            }
          : {
              name,
              resourceGroup: rg,
              body,
              revisionNumber: 1,
              script: scripts.get(name) ?? ['provisioning', 'ready'],
              step: 0,
              provisioning: 'InProgress',
            };
        app.script = scripts.get(name) ?? app.script;
        apps.set(name, app);
        const outcome = failing.delete(name) ? 'Failed' : 'Succeeded';
        return send(res, exchange, existing ? 200 : 201, render(app), {
          'azure-asyncoperation': operationUrl(name, 'put', outcome),
        });
      }
      if (method === 'DELETE') {
        if (!existing) return send(res, exchange, 204);
        const opUrl = operationUrl(name, 'delete', 'Succeeded');
        return send(res, exchange, 202, undefined, { 'azure-asyncoperation': opUrl, location: opUrl });
      }
    }
    return send(
      res,
      exchange,
      404,
      armError('NoRegisteredProviderFound', `No route for ${method} ${url.pathname}.`),
    );
  }

  const listening = await listenArm(handle);
  const { server, caPem } = listening;
  endpoint = listening.endpoint;
  return {
    endpoint,
    caPem,
    subscriptionId,
    exchanges,
    scriptFor: (appName, script) => scripts.set(appName, script),
    advance: (appName) => {
      const app = apps.get(appName);
      if (!app) throw new Error(`fake ARM has no app ${appName}`);
      app.step = Math.min(app.step + 1, app.script.length - 1);
    },
    failProvisioning: (appName) => failing.add(appName),
    inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
    appNames: () => [...apps.keys()],
    storedBody: (appName) => apps.get(appName)?.body,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The checks ARM makes that matter to us. */
function invalidApp(body: WireApp | undefined): string | undefined {
  if (!body || typeof body.location !== 'string') return "Required property 'location' not found in JSON.";
  if (!body.properties?.environmentId) return "Required property 'environmentId' not found in JSON.";
  const containers = body.properties.template?.containers ?? [];
  if (containers.length === 0) return 'A container app needs at least one container.';
  for (const c of containers) {
    const cpu = c.resources?.cpu ?? 0;
    const memory = Number.parseFloat(c.resources?.memory ?? '');
    if (Math.abs(memory - cpu * 2) > 1e-9) {
      return `The total requested CPU and memory resources for this application (CPU: ${cpu}, memory: ${memory}) is invalid.`;
    }
  }
  for (const s of body.properties.configuration?.secrets ?? []) {
    if (s.keyVaultUrl && !s.identity) return `Secret '${s.name}' references Key Vault without an identity.`;
  }
  return undefined;
}
