/**
 * `kjx run --timing` draws the boot it timed: the default image (`kjx init`) boots
 * under TCG, and `boot-timeline.svg` in the run's state directory names every service
 * the guest reported, each with its ready time on the host clock, in ready order.
 * `kjx boot --timing` (the interactive console, or `--detach`) writes one too once the
 * guest is ready.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { alive, removeAll, runKjx, spawnKjx, workspace } from '../helpers/kjx.js';
import { allElements, parseXml, textOf } from '../trace/xml-check.js';

const made: string[] = [];
after(() => removeAll(...made));

interface RunJson {
  outcome: string;
  stateDir: string;
  bootTimeline?: string;
  phases: { kernelStart?: number; ready?: number };
  services: { name: string; state: string; uptime: number }[];
}

/** Live processes whose command line mentions `path` (QEMU names its kernel and initrd files). */
function processesUsing(path: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(path) && alive(Number(d));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The words next to the service bars, in document (= row) order. */
function serviceTexts(svg: string): string[] {
  return allElements(parseXml(svg))
    .filter((e) => e.name === 'g' && e.attrs.class === 'row service')
    .map((g) => textOf(g.children.find((c) => c.name === 'text')!));
}

describe('kjx run --timing draws boot-timeline.svg', () => {
  let ws: string;
  let state: string;
  const run = (args: string[]) =>
    runKjx(['run', '--accel', 'tcg', ...args], {
      cwd: ws,
      env: { KJX_STATE_DIR: state },
      timeoutMs: 600_000,
    });

  before(() => {
    ws = workspace('timeline');
    // an ephemeral run VM does not start the interactive built-ins (ssh, console, acpid):
    // services of our own, one gated by another, one ready through the poller
    const spec = join(ws, 'kjx.yaml');
    const text = readFileSync(spec, 'utf8');
    assert.ok(text.includes('\nservices: {}\n'));
    writeFileSync(
      spec,
      text.replace(
        '\nservices: {}\n',
        [
          '',
          'services:',
          '  first:',
          '    run: sleep 3600',
          '  second:',
          '    run: sleep 3600',
          '    needs: [first]',
          '  polled:',
          '    run: sleep 3600',
          '    ready: {check: "test -d /proc/1"}',
          '',
        ].join('\n'),
      ),
    );
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    made.push(ws, state);
  });

  test('--json: the path is in the JSON; every service with its ready time, in ready order', () => {
    const r = run(['--timing', '--json', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as RunJson;
    assert.equal(res.outcome, 'exited');
    assert.equal(res.bootTimeline, join(res.stateDir, 'boot-timeline.svg'));
    assert.ok(existsSync(res.bootTimeline));
    assert.doesNotMatch(r.stderr, /boot timeline:/, '--json keeps stderr free of it');

    const kernelStart = res.phases.kernelStart!;
    assert.ok(kernelStart > 0);
    const ready = res.services
      .filter((e) => e.state === 'ready')
      .map((e) => ({ name: e.name, at: e.uptime + kernelStart }))
      .sort((a, b) => a.at - b.at);
    const names = [...new Set(res.services.map((e) => e.name))];
    for (const want of ['first', 'second', 'polled'])
      assert.ok(names.includes(want), `no ${want} in ${names}`);
    assert.ok(ready.length >= 3, JSON.stringify(res.services));
    const at = (n: string) => ready.findIndex((s) => s.name === n);
    assert.ok(at('first') < at('second'), 'second needs first');

    const svg = readFileSync(res.bootTimeline, 'utf8');
    const texts = serviceTexts(svg);
    assert.equal(texts.length, names.length, texts.join('\n'));
    assert.deepEqual(
      texts.slice(0, ready.length).map((t) => t.replace(/,.*/, '')),
      ready.map((s) => `${s.name} ready ${s.at.toFixed(2)} s`),
    );
    const all = allElements(parseXml(svg)).map(textOf);
    for (const phase of ['firmware ', 'kernel ', 'stage 1 ', 'stage 2 ']) {
      assert.ok(
        all.some((t) => t.startsWith(phase) && t.endsWith(' s')),
        phase,
      );
    }
    assert.ok(all.includes(`all ready ${res.phases.ready!.toFixed(2)} s`));
  });

  test('without --json: phases on stderr as before, then the path of the picture', () => {
    const r = run(['--timing', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /boot phases \(seconds since QEMU start\):/);
    assert.match(r.stderr, /services \(guest uptime\):/);
    const m = /^boot timeline: (\/.+\/boot-timeline\.svg)$/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(dirname(dirname(m[1]!)), join(state, 'runs'));
    assert.ok(serviceTexts(readFileSync(m[1]!, 'utf8')).some((t) => t.startsWith('second ready ')));
  });

  test('kjx boot --timing: once the guest is ready, the phases and the picture; SIGTERM still ends it', async () => {
    const child = spawnKjx(['boot', '--accel', 'tcg', '--timing'], {
      cwd: ws,
      env: { KJX_STATE_DIR: state },
    });
    let stderr = '';
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const deadline = Date.now() + 300_000;
    while (!/boot timeline: .*\.svg/.test(stderr) && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const m = /^boot timeline: (\/.+\/boot-timeline\.svg)\r?$/m.exec(stderr);
    try {
      assert.ok(m, stderr);
      assert.match(stderr, /services ready/);
      // the default image's built-ins and the spec's services, each with its ready time, in ready order
      const texts = serviceTexts(readFileSync(m[1]!, 'utf8'));
      for (const want of ['ssh', 'console', 'acpid', 'first', 'second', 'polled'])
        assert.ok(
          texts.some((t) => t.startsWith(`${want} ready `)),
          `${want}: ${texts.join(' | ')}`,
        );
      const times = texts.map((t) => Number(/ ready ([\d.]+) s/.exec(t)?.[1]));
      assert.deepEqual(
        times,
        [...times].sort((x, y) => x - y),
        texts.join(' | '),
      );
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    assert.equal(alive(child.pid!), false);
    assert.deepEqual(processesUsing(ws), [], 'a QEMU of this workspace is still running');
  });

  test('kjx boot --detach --timing: the picture in the VM directory, every service ready in order', () => {
    const env = { KJX_STATE_DIR: state };
    const r = runKjx(['boot', '--accel', 'tcg', '--detach', '--name', 'tl', '--timing', '--json'], {
      cwd: ws,
      env,
      timeoutMs: 300_000,
    });
    try {
      assert.equal(r.code, 0, r.stderr);
      const rec = JSON.parse(r.stdout) as { dir: string; bootTimeline: string };
      assert.equal(rec.bootTimeline, join(rec.dir, 'boot-timeline.svg'));
      const texts = serviceTexts(readFileSync(rec.bootTimeline, 'utf8'));
      for (const want of ['ssh', 'console', 'acpid', 'first', 'second', 'polled'])
        assert.ok(
          texts.some((t) => t.startsWith(`${want} ready `)),
          `${want}: ${texts.join(' | ')}`,
        );
    } finally {
      runKjx(['stop', 'tl'], { cwd: ws, env });
    }
    assert.deepEqual(processesUsing(ws), [], 'a QEMU of this workspace is still running');
  });
});
