// `npm start`: builds the extension, starts code-server on 127.0.0.1 with it loaded and a sample
// workspace (real photographs and the tiny fixture models, labelled as random-weight demos), and
// prints the URL to open. Ctrl+C stops it. PORT chooses the port (default 8080).
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { mkdirSync, rmSync } from 'node:fs';
import { installHarness } from './install.mjs';
import { makeWorkspace, repoRoot, startCodeServer } from './lib/code-server.mjs';

installHarness();
execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
const root = path.join(os.tmpdir(), 'vision-inspector-sample');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const workspace = makeWorkspace(root);
const server = await startCodeServer({ root, port: Number(process.env.PORT ?? 8080) });
console.log(`
Vision Inspector is running in VS Code (code-server) with a sample workspace:
  ${workspace}
The models in models/ are tiny test fixtures with random weights: their labels and maps show how the tool works, not what a trained model sees.
Open this URL (it loads the extension from ${repoRoot}):

  ${server.url(workspace)}

Right-click an image in the Explorer → "Inspect Image". Ctrl+C to stop.`);
const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
