import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectQmp, QmpFramer } from '../../src/vm/qmp.js';
import { kjxError } from '../helpers/kjx-error.js';

test('the framer splits messages at newlines, whole or byte by byte', () => {
  const text =
    '{"QMP": {"version": {}}}\r\n{"return": {}, "id": "kjx-1"}\n{"event": "POWERDOWN", "data": {}}\n';
  assert.equal(new QmpFramer().push(text).length, 3);
  const f = new QmpFramer();
  const got = [...text].flatMap((c) => f.push(c));
  assert.deepEqual(got, new QmpFramer().push(text));
});

test('a line that is not JSON is an error naming it', () => {
  assert.throws(() => new QmpFramer().push('{"QMP": \n'), kjxError('VM_START', /not JSON/));
});

test('connectQmp negotiates capabilities, runs commands, reports errors and events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-qmp-'));
  const path = join(dir, 'qmp.sock');
  const seen: string[] = [];
  const server = createServer((sock) => {
    sock.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\n');
    let buf = '';
    sock.on('data', (b) => {
      buf += b;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        seen.push(msg.execute);
        if (msg.execute === 'nope')
          sock.write(
            `{"error": {"class": "CommandNotFound", "desc": "no such command"}, "id": "${msg.id}"}\n`,
          );
        else {
          if (msg.execute === 'system_powerdown') sock.write('{"event": "POWERDOWN", "data": {}}\n');
          sock.write(`{"return": {"ok": "${msg.execute}"}, "id": "${msg.id}"}\n`);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const q = await connectQmp(path);
    assert.deepEqual(await q.execute('system_powerdown'), { ok: 'system_powerdown' });
    await assert.rejects(q.execute('nope'), /CommandNotFound: no such command/);
    assert.deepEqual(
      q.events().map((e) => e.event),
      ['POWERDOWN'],
    );
    assert.deepEqual(seen, ['qmp_capabilities', 'system_powerdown', 'nope']);
    q.close();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no greeting within the timeout is a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-qmp-'));
  const path = join(dir, 'qmp.sock');
  const server = createServer(() => {});
  await new Promise<void>((r) => server.listen(path, r));
  try {
    await assert.rejects(connectQmp(path, 200), /no QMP greeting/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
