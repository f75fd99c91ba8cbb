/** The Depends resolver over a fake index (no apt): virtual names and their providers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AptIndex, type AptPackage, resolvePackages } from '../../src/sources/apt.js';

function index(pkgs: Record<string, string[][]>, providers: Record<string, string[]>): AptIndex {
  const pkg = (name: string, depends: string[][]): AptPackage => ({
    name,
    version: '1',
    arch: 'amd64',
    filename: `pool/${name}.deb`,
    size: 1,
    sha256: '0'.repeat(64),
    depends,
    provides: [],
  });
  return {
    async show(names) {
      const out = new Map<string, AptPackage>();
      for (const n of names.map((x) => x.split('=')[0]!)) if (pkgs[n]) out.set(n, pkg(n, pkgs[n]));
      return out;
    },
    async providers(name) {
      return providers[name] ?? [];
    },
  };
}

test('a virtual dependency is satisfied by a provider that is a root itself (podman: container-network-stack)', async () => {
  const idx = index(
    {
      podman: [['containers-common']],
      'containers-common': [['container-network-stack']],
      'containernetworking-plugins': [],
      netavark: [],
    },
    { 'container-network-stack': ['containernetworking-plugins', 'netavark'] },
  );
  const got = await resolvePackages(idx, ['podman', 'containernetworking-plugins']);
  assert.deepEqual(
    got.map((p) => p.name),
    ['containernetworking-plugins', 'containers-common', 'podman'],
  );
});

test('a virtual dependency takes its first provider when none is chosen yet', async () => {
  const idx = index(
    { 'containers-common': [['container-network-stack']], 'containernetworking-plugins': [], netavark: [] },
    { 'container-network-stack': ['containernetworking-plugins', 'netavark'] },
  );
  const got = await resolvePackages(idx, ['containers-common']);
  assert.deepEqual(
    got.map((p) => p.name),
    ['containernetworking-plugins', 'containers-common'],
  );
});
