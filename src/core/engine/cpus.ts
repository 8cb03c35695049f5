/**
 * How many inference threads to use by default: one per physical core.
 *
 * ORT's own default is one per logical CPU; on hyper-threaded machines that puts two MatMul
 * threads on one core and runs 2–3× slower (ENGINE-FACTS.md), so we count cores ourselves.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * Counts distinct (physical id, core id) pairs in /proc/cpuinfo text; 0 when the text does not
 * say (some ARM kernels and VMs omit these fields).
 */
export function countPhysicalCores(cpuinfo: string): number {
  const cores = new Set<string>();
  // Blocks are separated by blank lines, one per logical CPU.
  for (const block of cpuinfo.split(/\n\s*\n/)) {
    const physicalId = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
    const coreId = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
    if (coreId !== undefined) cores.add(`${physicalId ?? '0'}:${coreId}`);
  }
  return cores.size;
}

/**
 * Physical cores this process may use. Capped by os.availableParallelism(), which honours the
 * CPU affinity mask: a container pinned to 2 CPUs of a 64-core host must not get 32 threads.
 */
export function physicalCoreCount(): number {
  const logical = Math.max(1, os.availableParallelism());
  if (process.platform !== 'linux') return logical;
  let physical = 0;
  try {
    physical = countPhysicalCores(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // No /proc (sandboxes): fall through to the logical count.
  }
  return physical > 0 ? Math.min(physical, logical) : logical;
}
