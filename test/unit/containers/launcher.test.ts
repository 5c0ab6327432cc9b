import type { ContainerGroup } from '@azure/arm-containerinstance';
import { AciLauncher, groupStateOf, toLaunchFailure } from '../../../shared/containers/aciLauncher';
import { createContainerLauncher, type LauncherSettings } from '../../../shared/containers/createLauncher';
import {
  groupTags,
  parseContainerSpec,
  specFingerprint,
  tagsMatch,
  tailLinesOf,
  type ContainerSpec,
} from '../../../shared/containers/launcher';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import type { AccessToken, TokenCredential } from '@azure/core-auth';

const BASE: ContainerSpec = {
  groupName: 'train-abc',
  role: 'training',
  image: 'acr.azurecr.io/training:1',
  region: 'westeurope',
  cpuCores: 2,
  memoryGb: 4,
  environment: { B: '2', A: '1' },
  secureEnvironment: { SAS: 'secret-one' },
  tags: { orchestration: 'o-1', stage: 'train' },
};

describe('spec fingerprint', () => {
  test('ignores key order and secure values, but not anything that changes the group', () => {
    const reordered = {
      ...BASE,
      environment: { A: '1', B: '2' },
      tags: { stage: 'train', orchestration: 'o-1' },
    };
    expect(specFingerprint(reordered)).toBe(specFingerprint(BASE));
    // A rotated SAS is the same group: the secret must not be derivable from a tag either.
    expect(specFingerprint({ ...BASE, secureEnvironment: { SAS: 'secret-two' } })).toBe(
      specFingerprint(BASE),
    );
    expect(groupTags(BASE)['greenml-spec-sha256']).not.toContain('secret');
    for (const changed of [
      { image: 'acr.azurecr.io/training:2' },
      { cpuCores: 1 },
      { memoryGb: 8 },
      { region: 'swedencentral' },
      { environment: { A: '1', B: '3' } },
      { secureEnvironment: { OTHER: 'x' } },
      { tags: { orchestration: 'o-2', stage: 'train' } },
      { port: 80 },
    ] satisfies Partial<ContainerSpec>[]) {
      expect(specFingerprint({ ...BASE, ...changed })).not.toBe(specFingerprint(BASE));
    }
  });

  test('groupTags adds role and fingerprint to the user tags', () => {
    expect(groupTags(BASE)).toStrictEqual({
      orchestration: 'o-1',
      stage: 'train',
      'greenml-role': 'training',
      'greenml-spec-sha256': specFingerprint(BASE),
    });
  });
});

describe('parseContainerSpec', () => {
  test('accepts a valid spec and rejects each kind of bad field by path', () => {
    expect(parseContainerSpec(BASE)).toStrictEqual(BASE);
    const bad: [Partial<ContainerSpec> | Record<string, unknown>, RegExp][] = [
      [{ groupName: '-starts-with-dash' }, /groupName/],
      [{ groupName: 'x'.repeat(64) }, /groupName/],
      [{ cpuCores: 0 }, /cpuCores/],
      [{ memoryGb: 17 }, /memoryGb/],
      [{ environment: { 'BAD-NAME': 'x' } }, /environment/],
      [{ port: 70000 }, /port/],
      [{ identityResourceId: 'not-an-arm-id' }, /identityResourceId/],
      [{ tags: { 'a/b': 'x' } }, /tags/],
      [{ unexpected: true }, /unexpected|Unrecognized/],
    ];
    for (const [patch, message] of bad) {
      expect(() => parseContainerSpec({ ...BASE, ...patch })).toThrow(message);
    }
  });
});

describe('helpers', () => {
  test('tailLinesOf keeps the last lines and the trailing newline', () => {
    expect(tailLinesOf('a\nb\nc\n', 2)).toBe('b\nc\n');
    expect(tailLinesOf('a\nb\nc', 1)).toBe('c');
    expect(tailLinesOf('a\nb\n', 10)).toBe('a\nb\n');
    expect(tailLinesOf('', 3)).toBe('');
    expect(tailLinesOf('a\n', undefined)).toBe('a\n');
  });

  test('tagsMatch needs every filter tag with the same value', () => {
    expect(tagsMatch({ a: '1', b: '2' }, { a: '1' })).toBe(true);
    expect(tagsMatch({ a: '1' }, { a: '2' })).toBe(false);
    expect(tagsMatch({ a: '1' }, { b: '1' })).toBe(false);
    expect(tagsMatch({ a: '1' }, undefined)).toBe(true);
  });
});

describe('groupStateOf (ACI instance view -> GroupState)', () => {
  const start = new Date('2024-05-01T10:00:00Z');
  const end = new Date('2024-05-01T10:30:00Z');
  function group(parts: {
    provisioningState?: string;
    state?: string;
    container?: {
      state?: string;
      exitCode?: number;
      startTime?: Date;
      finishTime?: Date;
      detailStatus?: string;
    };
    events?: { message: string }[];
  }): ContainerGroup {
    return {
      location: 'westeurope',
      osType: 'Linux',
      provisioningState: parts.provisioningState ?? 'Succeeded',
      instanceView: { state: parts.state, events: parts.events },
      containers: [
        {
          name: 'training',
          image: 'x',
          resources: { requests: { cpu: 1, memoryInGB: 1 } },
          instanceView: parts.container ? { currentState: parts.container } : undefined,
        },
      ],
    } as ContainerGroup;
  }

  test.each([
    ['no instance view yet', group({ provisioningState: 'Creating' }), { kind: 'pending' }],
    ['pulling', group({ state: 'Pending', container: { state: 'Waiting' } }), { kind: 'pending' }],
    [
      'running',
      group({ state: 'Running', container: { state: 'Running', startTime: start } }),
      { kind: 'running', startedAt: start.toISOString() },
    ],
    [
      'terminated 0 while the group still says Running',
      group({
        state: 'Running',
        container: { state: 'Terminated', exitCode: 0, startTime: start, finishTime: end },
      }),
      { kind: 'succeeded', startedAt: start.toISOString(), finishedAt: end.toISOString(), exitCode: 0 },
    ],
    [
      'terminated 137',
      group({
        state: 'Failed',
        container: {
          state: 'Terminated',
          exitCode: 137,
          startTime: start,
          finishTime: end,
          detailStatus: 'OOMKilled',
        },
      }),
      {
        kind: 'failed',
        startedAt: start.toISOString(),
        finishedAt: end.toISOString(),
        exitCode: 137,
        reason: 'exited with code 137 (OOMKilled)',
      },
    ],
    [
      'group failed without a container state',
      group({ state: 'Failed' }),
      { kind: 'failed', exitCode: null, reason: 'container group Failed' },
    ],
    [
      'stopped by someone',
      group({ state: 'Stopped', container: { state: 'Running', startTime: start } }),
      {
        kind: 'failed',
        startedAt: start.toISOString(),
        exitCode: null,
        reason: 'container group was stopped',
      },
    ],
    [
      'provisioning failed',
      group({ provisioningState: 'Failed', events: [{ message: 'pull access denied' }] }),
      { kind: 'failed', exitCode: null, reason: 'provisioning failed: pull access denied' },
    ],
  ])('%s', (_name, input, expected) => {
    expect(groupStateOf(input)).toStrictEqual(expected);
  });
});

describe('toLaunchFailure', () => {
  function restError(statusCode: number | undefined, code?: string): Error {
    return Object.assign(new Error('boom'), { name: 'RestError', statusCode, code });
  }
  test.each([
    [429, undefined, 'LAUNCH_FAILED', true],
    [503, undefined, 'LAUNCH_FAILED', true],
    [400, 'InvalidContainerGroupName', 'LAUNCH_FAILED', false],
    [403, 'AuthorizationFailed', 'LAUNCH_FAILED', false],
    [409, 'ContainerGroupTransitioning', 'CONFLICT', true],
    [409, 'ContainerGroupQuotaReached', 'CONFLICT', false],
    [undefined, 'ECONNRESET', 'LAUNCH_FAILED', true],
  ])('status %s %s -> %s retryable %s', (status, armCode, code, retryable) => {
    expect(toLaunchFailure(restError(status, armCode), 'do it')).toMatchObject({ code, retryable });
  });
  test('plain errors (no HTTP status) are retryable launch failures', () => {
    expect(toLaunchFailure(new Error('socket hang up'), 'do it')).toMatchObject({
      code: 'LAUNCH_FAILED',
      retryable: true,
      message: 'Could not do it: socket hang up',
    });
  });
});

describe('createContainerLauncher', () => {
  const settings: LauncherSettings = {
    CONTAINER_LAUNCHER: 'local',
    ARM_ENDPOINT: 'https://management.azure.com',
    TRAINING_IMAGE: 'green-e2e-ml/training:latest',
    MODEL_API_IMAGE: 'green-e2e-ml/model-api:latest',
  };
  const credential: TokenCredential = {
    getToken: async (): Promise<AccessToken> => ({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }),
  };

  test('local by default', () => {
    const launcher = createContainerLauncher(settings);
    expect(launcher).toBeInstanceOf(LocalLauncher);
    expect(launcher.kind).toBe('local');
  });

  test('aci needs a subscription and resource group', () => {
    expect(() => createContainerLauncher({ ...settings, CONTAINER_LAUNCHER: 'aci' }, { credential })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('AZURE_SUBSCRIPTION_ID'),
      }),
    );
    const launcher = createContainerLauncher(
      {
        ...settings,
        CONTAINER_LAUNCHER: 'aci',
        AZURE_SUBSCRIPTION_ID: '00000000-0000-4000-8000-000000000001',
        ACI_RESOURCE_GROUP: 'rg-x',
      },
      { credential },
    );
    expect(launcher).toBeInstanceOf(AciLauncher);
    expect(launcher.kind).toBe('aci');
  });
});
