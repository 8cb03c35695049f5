import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import { countPhysicalCores, physicalCoreCount } from '../../../src/core/engine/cpus.js';

function cpuinfo(cpus: { physical?: number; core?: number }[]): string {
  return cpus
    .map((c, i) =>
      [`processor\t: ${i}`, 'model name\t: Test CPU', c.physical === undefined ? '' : `physical id\t: ${c.physical}`, c.core === undefined ? '' : `core id\t\t: ${c.core}`]
        .filter(Boolean)
        .join('\n'),
    )
    .join('\n\n');
}

describe('engine: physical core count', function () {
  it('counts hyper-threads of one core once', function () {
    assert.equal(countPhysicalCores(cpuinfo([{ physical: 0, core: 0 }, { physical: 0, core: 1 }, { physical: 0, core: 0 }, { physical: 0, core: 1 }])), 2);
  });

  it('tells equal core ids on different sockets apart', function () {
    assert.equal(countPhysicalCores(cpuinfo([{ physical: 0, core: 0 }, { physical: 1, core: 0 }])), 2);
  });

  it('says 0 when cpuinfo has no core ids (some ARM kernels)', function () {
    assert.equal(countPhysicalCores(cpuinfo([{}, {}, {}])), 0);
    assert.equal(countPhysicalCores(''), 0);
  });

  it('gives this machine at least one and at most availableParallelism threads', function () {
    const n = physicalCoreCount();
    assert.ok(n >= 1 && n <= os.availableParallelism(), String(n));
  });
});
