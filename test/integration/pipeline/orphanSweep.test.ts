import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { loadSettings } from '../../../shared/config';
import { AciLauncher } from '../../../shared/containers/aciLauncher';
import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { sweepOrphanContainers } from '../../../shared/pipeline/carbonPolling';
import { APP_TAG } from '../../../shared/pipeline/context';
import { startFakeArm, type FakeArm } from '../../support/fakeArm';
import { uniqueName } from '../../support/storage';

/**
 * The poller's orphan sweep against the real ARM SDK on a loopback ARM: one group whose delete
 * is refused must not keep the sweep from deleting the others, and the refusal is reported.
 */
const credential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({ token: 'fake', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

let arm: FakeArm;
beforeAll(async () => {
  arm = await startFakeArm();
});
afterAll(async () => {
  await arm.close();
});

it('sweeps every orphan group past a failed delete and reports the failure', async () => {
  const launcher = new AciLauncher(credential, arm.subscriptionId, {
    resourceGroup: 'rg-sweep',
    armEndpoint: arm.endpoint,
    trustedCaPem: arm.caPem,
    retry: { maxRetries: 1, retryDelayMs: 5, maxRetryDelayMs: 10 },
    pollIntervalMs: 5,
  });
  const settings = loadSettings({
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
    TASKHUB_NAME: uniqueName('hub'),
  });
  const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
  const ctx = await composePipeline(settings, { now: clock.now, launcher, log: () => {} });
  const host = await LocalHost.create(ctx, clock);
  const groups = ['orphan-a', 'orphan-b', 'orphan-c'].map((g) => uniqueName(`${g}-`));
  for (const groupName of groups) {
    await launcher.create({
      groupName,
      role: 'training',
      image: 'green-e2e-ml/training:latest',
      region: 'swedencentral',
      cpuCores: 1,
      memoryGb: 1,
      environment: {},
      tags: { app: APP_TAG, instanceId: 'retrain-long-gone', stage: 'train' },
    });
  }
  // The first group's delete is refused for good (a 403 is not retried).
  arm.inject({
    method: 'DELETE',
    pathIncludes: groups[0],
    status: 403,
    code: 'AuthorizationFailed',
    times: 10,
  });

  const sweep = await sweepOrphanContainers(ctx, host.client);

  expect(sweep.deleted.sort()).toEqual([groups[1], groups[2]].sort());
  expect(sweep.failed).toMatchObject([{ groupName: groups[0], reason: expect.stringMatching(/403/) }]);
  const left = (await launcher.list({ tags: { app: APP_TAG } })).map((g) => g.groupName);
  expect(left.filter((g) => groups.includes(g))).toEqual([groups[0]]);
});
