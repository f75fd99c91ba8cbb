/** The generic loader's JSON lines: attach results, ready, events, the map dump; damage and bounds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_EVENTS, parseLoaderOutput } from '../../src/bpf/loader-output.js';
import { KjxError } from '../../src/util/errors.js';

const MAPS =
  '{"type":"maps","maps":[{"name":"counts","id":2,"type":"hash","key_size":4,"value_size":8,"max_entries":16,"btf_id":0,"btf_key_type_id":0,"btf_value_type_id":0,"entries":[["01000000","0200000000000000"]],"truncated":false}],"btf":{}}';

test('every kind of line, and the lines of a loader of its own as text', () => {
  const o = parseLoaderOutput(
    [
      '{"type":"attached","program":"on_exec","section":"tp_btf/sched_process_exec"}',
      '{"type":"skipped","program":"on_up","section":"uprobe","error":"Invalid argument"}',
      '{"type":"ready"}',
      '{"type":"event","map":"events","data":"0a0b"}',
      'my own line',
      MAPS,
      '',
    ].join('\n'),
  );
  assert.deepEqual(o.attached, [{ program: 'on_exec', section: 'tp_btf/sched_process_exec' }]);
  assert.equal(o.skipped[0]?.error, 'Invalid argument');
  assert.equal(o.ready, true);
  assert.deepEqual(o.events, [{ map: 'events', data: Buffer.from([10, 11]) }]);
  assert.deepEqual(o.text, ['my own line']);
  assert.equal(o.maps?.maps[0]?.entries?.[0]?.[0], '01000000');
});

test('a line cut short (killed loader, a service log splitting long lines) is counted, not fatal', () => {
  const o = parseLoaderOutput(`{"type":"ready"}\n${MAPS.slice(0, 100)}\n${MAPS.slice(100)}\n`);
  assert.equal(o.unreadable, 1);
  assert.equal(o.maps, undefined);
});

test('well-formed JSON of the wrong shape is damage: TRACE_PARSE at its line', () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(
      () => parseLoaderOutput(text, 'prog.raw.txt'),
      (e: unknown) => e instanceof KjxError && e.code === 'TRACE_PARSE' && re.test(e.message),
    );
  bad(
    '{"type":"ready"}\n{"type":"event","map":"e","data":"xyz"}',
    /prog\.raw\.txt:2: an event whose data is not hex/,
  );
  bad('{"type":"maps","maps":[{"name":1}],"btf":{}}', /map dump without maps/);
  bad(MAPS.replace('"01000000"', '"zz"'), /map counts: an entry that is not hex/);
});

test('ring buffer records beyond the bound are counted, not kept', () => {
  const line = '{"type":"event","map":"e","data":"00"}\n';
  const o = parseLoaderOutput(line.repeat(MAX_EVENTS + 5));
  assert.equal(o.events.length, MAX_EVENTS);
  assert.equal(o.eventsDropped, 5);
});
