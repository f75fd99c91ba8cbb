/**
 * A program's maps from the loader's hex dump to maps.json, histograms, counters,
 * tables and ring buffer records, with BTF built by test/fixtures/btf-fixtures.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MapDump, MapsDump } from '../../src/bpf/loader-output.js';
import { formatLog2Hist } from '../../src/trace/histogram.js';
import {
  mapsJson,
  renderEvents,
  renderProgramMaps,
  slotsToHist,
  unitFromName,
} from '../../src/trace/prog-maps.js';
import { progResults } from '../../src/trace/prog-results.js';
import { programBtf } from '../fixtures/btf-fixtures.js';

const { btf, ids } = programBtf();
const BTF_ID = 7;
const hex = (b: Buffer) => b.toString('hex');
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint | number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const procKey = (pid: number, comm: string) => {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(pid);
  b.write(comm, 4);
  return b;
};

function map(m: Partial<MapDump> & Pick<MapDump, 'name' | 'entries'>): MapDump {
  return {
    id: 1,
    type: 'hash',
    key_size: 4,
    value_size: 8,
    max_entries: 1024,
    btf_id: BTF_ID,
    btf_key_type_id: 0,
    btf_value_type_id: 0,
    ...m,
  };
}
const dump = (...maps: MapDump[]): MapsDump => ({ maps, btf: { [BTF_ID]: hex(btf) } });

describe('maps', () => {
  test('a counter keyed by struct proc_key: a table biggest first, comm as text', () => {
    const d = dump(
      map({
        name: 'counts',
        key_size: 20,
        btf_key_type_id: ids.key,
        btf_value_type_id: ids.u64,
        entries: [
          [hex(procKey(10, 'sh')), hex(u64(3))],
          [hex(procKey(11, 'cat')), hex(u64(57))],
        ],
      }),
    );
    const p = renderProgramMaps(d);
    assert.deepEqual(p.tables[0]?.rows, [
      { pid: 11, comm: 'cat', value: 57 },
      { pid: 10, comm: 'sh', value: 3 },
    ]);
    assert.deepEqual(mapsJson(p), {
      counts: [
        { key: { pid: 10, comm: 'sh' }, value: 3 },
        { key: { pid: 11, comm: 'cat' }, value: 57 },
      ],
    });
    assert.equal(p.maps[0]?.keyType, 'struct proc_key');
  });

  test('struct hist { slots[] }: one histogram per key, labelled by the key and the other fields', () => {
    const h = (slots: number[], comm: string) => {
      const b = Buffer.alloc(32);
      for (const [i, s] of slots.entries()) b.writeUInt32LE(s, 4 * i);
      b.write(comm, 16);
      return b;
    };
    const d = dump(
      map({
        name: 'hists',
        value_size: 32,
        btf_key_type_id: ids.u32,
        btf_value_type_id: ids.hist,
        entries: [
          [hex(u32(5)), hex(h([1, 0, 4, 0], 'sh'))],
          [hex(u32(6)), hex(h([0, 2, 0, 0], 'cat'))],
        ],
      }),
    );
    const p = renderProgramMaps(d);
    assert.equal(p.histograms.length, 2);
    assert.equal(p.histograms[0]?.label, 'key = 5, comm = sh');
    assert.deepEqual(p.histograms[0]?.buckets, [
      { low: 0, high: 1, count: 1 },
      { low: 2, high: 3, count: 0 },
      { low: 4, high: 7, count: 4 },
    ]);
    assert.equal(p.tables.length, 0, 'a histogram map is not also a table');
  });

  test('a map named *hist* with slot keys, per-CPU: the CPUs add up; the unit comes from the name', () => {
    const perCpu = (...v: number[]) => Buffer.concat(v.map((x) => u64(x)));
    const d = dump(
      map({
        name: 'lat_hist_ns',
        type: 'percpu_hash',
        cpus: 2,
        btf_key_type_id: ids.u32,
        btf_value_type_id: ids.u64,
        entries: [
          [hex(u32(0)), hex(perCpu(1, 2))],
          [hex(u32(3)), hex(perCpu(5, 0))],
        ],
      }),
    );
    const p = renderProgramMaps(d);
    assert.equal(p.histograms[0]?.unit, 'nsecs');
    assert.deepEqual(
      p.histograms[0]?.buckets.map((b) => b.count),
      [3, 0, 0, 5],
    );
    assert.deepEqual(mapsJson(p).lat_hist_ns, [
      { key: 0, value: 3, cpus: [1, 2] },
      { key: 3, value: 5, cpus: [5, 0] },
    ]);
  });

  test('global variables: integers are counters, an integer array named *hist* a histogram', () => {
    const bss = Buffer.concat([u64(42), u32(0), u32(7), u32(1), u32(0)]);
    const d = dump(
      map({
        name: 'prog.bss',
        type: 'array',
        value_size: 24,
        btf_value_type_id: ids.bss,
        entries: [[hex(u32(0)), hex(bss)]],
      }),
    );
    const p = renderProgramMaps(d);
    assert.deepEqual(p.counters, { total: 42 });
    assert.equal(p.histograms[0]?.label, 'lat_hist');
    assert.deepEqual(
      p.histograms[0]?.buckets.map((b) => b.count),
      [0, 7, 1],
    );
    assert.deepEqual(mapsJson(p), { '.bss': { total: 42, lat_hist: [0, 7, 1, 0] } });
  });

  test('without BTF: 4- and 8-byte values as numbers, anything else as hex; unreadable maps have no entries', () => {
    const d: MapsDump = {
      maps: [
        map({ name: 'plain', btf_id: 0, entries: [[hex(u32(9)), hex(u64(2n ** 60n))]] }),
        map({ name: 'raw', btf_id: 0, key_size: 3, value_size: 3, entries: [['010203', 'aabbcc']] }),
        map({ name: 'rb', type: 'ringbuf', btf_id: 0, entries: null }),
      ],
      btf: {},
    };
    const j = mapsJson(renderProgramMaps(d));
    assert.deepEqual(j, {
      plain: [{ key: 9, value: '1152921504606846976' }],
      raw: [{ key: '010203', value: 'aabbcc' }],
    });
  });

  test('ring buffer records through struct event; hex when the BTF has no such type', () => {
    const rec = Buffer.concat([u32(77), u32(0), Buffer.from('ls\0\0\0\0\0\0\0\0\0\0\0\0\0\0')]);
    const d = dump();
    assert.deepEqual(renderEvents([{ map: 'events', data: rec }], d), [
      { map: 'events', event: { pid: 77, pad: 0, comm: 'ls' } },
    ]);
    assert.deepEqual(renderEvents([{ map: 'events', data: Buffer.from([1, 2]) }], undefined), [
      { map: 'events', event: '0102' },
    ]);
    // a record shorter than struct event is not forced through it
    assert.deepEqual(renderEvents([{ map: 'events', data: Buffer.from([1, 2]) }], d), [
      { map: 'events', event: '0102' },
    ]);
  });

  test('slots become libbpf-tools buckets, and print like print_log2_hist', () => {
    const h = slotsToHist([2, 0, 1, 0, 0], 'usecs');
    assert.deepEqual(
      h.buckets.map((b) => [b.low, b.high]),
      [
        [0, 1],
        [2, 3],
        [4, 7],
      ],
    );
    assert.match(formatLog2Hist(h), /^\s+usecs\s+: count\s+distribution\n\s+0 -> 1\s+: 2\s+\|\*{40}\|/);
    assert.equal(unitFromName('runq_us'), 'usecs');
    assert.equal(unitFromName('hist'), 'value');
  });

  test("progResults: a custom loader's own lines stay text; the --dump-maps file provides the maps", () => {
    const mapsLine = JSON.stringify({
      type: 'maps',
      maps: [
        map({
          name: 'counts',
          key_size: 20,
          btf_key_type_id: ids.key,
          btf_value_type_id: ids.u64,
          entries: [[hex(procKey(3, 'cat')), hex(u64(12))]],
        }),
      ],
      btf: { [BTF_ID]: hex(btf) },
    });
    const r = progResults('PID COMM SYSCALLS\n3   cat  12\n', `${mapsLine}\n`);
    assert.deepEqual(r.loader.text, ['PID COMM SYSCALLS', '3   cat  12']);
    assert.deepEqual(r.results.table?.rows, [{ pid: 3, comm: 'cat', value: 12 }]);
    assert.deepEqual(r.maps, { counts: [{ key: { pid: 3, comm: 'cat' }, value: 12 }] });
  });
});
