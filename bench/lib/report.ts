/** Printing and statistics shared by the benches (DESIGN §3: one `figure:` line per figure). */

export function figure(name: string, value: number, unit: string, digits = 2): void {
  console.log(`figure: ${name} = ${value.toFixed(digits)} ${unit}`);
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function now(): number {
  return performance.now();
}
