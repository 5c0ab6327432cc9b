import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { LaunchError } from '../errors';

/** Azurite's published development account; not a secret (it is in Microsoft's docs). */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface RunningAzurite {
  readonly connectionString: string;
  readonly blobPort: number;
  readonly tablePort: number;
  /** The blob and table service processes (recorded so a resumed run can stop a killed run's). */
  readonly pids: readonly number[];
  /** SIGINT: the table service writes its in-memory state to disk only on SIGINT. */
  stop(): Promise<void>;
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new LaunchError(`Azurite exited with code ${child.exitCode} before listening`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new LaunchError(`Azurite did not listen on ${port} within ${timeoutMs} ms`, { retryable: true });
}

function azuriteScript(service: 'blob' | 'table'): string {
  const pkg = path.dirname(require.resolve('azurite/package.json'));
  return path.join(pkg, 'dist', 'src', service, 'main.js');
}

/**
 * Starts Azurite blob and table services in memory on free loopback ports. Telemetry is off (it
 * phones home and can stall shutdown in a closed network); the API-version check is off so the
 * SDK's newer x-ms-version is accepted.
 */
export async function startAzurite(
  options: { extentMemoryLimitMb?: number; location?: string } = {},
): Promise<RunningAzurite> {
  const [blobPort, tablePort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  // On disk when a location is given (the local driver resumes orchestrations after a restart).
  const persistence = options.location ? ['--location', options.location] : ['--inMemoryPersistence'];
  const common = [...persistence, '--skipApiVersionCheck', '--disableTelemetry', '--silent'];
  const blob = spawn(
    process.execPath,
    [
      azuriteScript('blob'),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(blobPort),
      ...(options.location ? [] : ['--extentMemoryLimit', String(options.extentMemoryLimitMb ?? 2048)]),
      ...common,
    ],
    { stdio: 'ignore' },
  );
  const table = spawn(
    process.execPath,
    [azuriteScript('table'), '--tableHost', '127.0.0.1', '--tablePort', String(tablePort), ...common],
    { stdio: 'ignore' },
  );
  const children = [blob, table];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            // The table service (LokiJS) saves its database on SIGINT only; SIGTERM loses ~5 s of writes.
            child.kill('SIGINT');
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  };
  try {
    await Promise.all([waitForPort(blobPort, blob, 30000), waitForPort(tablePort, table, 30000)]);
  } catch (error) {
    await stop();
    throw error;
  }
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${blobPort}/${DEV_ACCOUNT};TableEndpoint=http://127.0.0.1:${tablePort}/${DEV_ACCOUNT};`;
  const pids = children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  return { connectionString, blobPort, tablePort, pids, stop };
}
