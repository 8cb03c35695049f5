/**
 * Extension-host tests: run by VS Code inside code-server (payload `extensionTestsPath`), with the
 * real `vscode` API, against the workspace the e2e harness makes. Bundled by test/e2e/run.mjs.
 * The remote extension host's output does not reach the page, so results also go to a JSON file
 * beside this bundle, which the harness reads.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import { defineHostTests } from './suite';

export const REPORT_FILE = 'host-tests-report.json';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: 'spec' });
  // Sets describe/it/before… as globals for the suite, as the mocha CLI would.
  mocha.suite.emit('pre-require', globalThis, 'host-tests', mocha);
  defineHostTests();
  const lines: string[] = [];
  let passing = 0;
  let failing = 0;
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      writeFileSync(path.join(__dirname, REPORT_FILE), JSON.stringify({ passing, failing, lines }, null, 1));
      if (failures > 0) reject(new Error(`${failures} extension-host test(s) failed`));
      else resolve();
    });
    runner.on('pass', (test) => {
      passing++;
      lines.push(`✔ ${test.fullTitle()}`);
    });
    runner.on('fail', (test, err: Error) => {
      failing++;
      lines.push(`✘ ${test.fullTitle()}\n      ${String(err.stack ?? err.message).split('\n').slice(0, 4).join('\n      ')}`);
    });
  });
}
