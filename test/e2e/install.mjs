// Installs the e2e harness (code-server 4.100.3 + playwright-core) into test/e2e/node_modules,
// offline-safe, unless it is already there. See shared/E2E.md for why each step is needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const harnessDir = path.dirname(fileURLToPath(import.meta.url));
const RIPGREP_CACHE = 'vscode-ripgrep-cache-1.15.11';
const RIPGREP_TARBALL = 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz';

export function harnessInstalled() {
  return (
    existsSync(path.join(harnessDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js')) &&
    existsSync(path.join(harnessDir, 'node_modules', 'playwright-core', 'package.json'))
  );
}

/** @vscode/ripgrep would download `rg` from GitHub; a tarball of Debian's rg in its cache satisfies it. */
function seedRipgrepCache() {
  const cacheDir = path.join(os.tmpdir(), RIPGREP_CACHE);
  const tarball = path.join(cacheDir, RIPGREP_TARBALL);
  if (existsSync(tarball)) return;
  const rg = spawnSync('sh', ['-c', 'command -v rg'], { encoding: 'utf8' }).stdout.trim();
  if (!rg) throw new Error('ripgrep is not installed: apt-get install -y ripgrep (see .ci/run).');
  mkdirSync(cacheDir, { recursive: true });
  const staging = mkdtempSync(path.join(os.tmpdir(), 'rg-'));
  copyFileSync(rg, path.join(staging, 'rg'));
  execFileSync('tar', ['-czf', tarball, '-C', staging, 'rg']);
  rmSync(staging, { recursive: true, force: true });
}

export function installHarness() {
  if (harnessInstalled()) return;
  seedRipgrepCache();
  console.log('e2e: installing the harness (code-server 4.100.3, playwright-core) into test/e2e/node_modules …');
  const started = Date.now();
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--unsafe-perm', '--loglevel=error'], {
    cwd: harnessDir,
    stdio: 'inherit',
    env: {
      ...process.env,
      // node-pty's postinstall runs `npx node-gyp`, which is cancelled without a TTY unless this is set.
      npm_config_yes: 'true',
      // npm 11 only warns about install scripts outside allowScripts; a later npm might block them.
      npm_config_dangerously_allow_all_scripts: 'true',
    },
  });
  if (!harnessInstalled()) throw new Error('e2e: the harness install finished but code-server or playwright-core is missing.');
  console.log(`e2e: harness installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) installHarness();
