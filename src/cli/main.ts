// The `keyledger` command (bin/keyledger.js, `npm run keyledger -- ...`).
import { runCli } from './cli.ts';

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// Exit explicitly: a pool or timer some library left behind must not keep a
// finished command alive. Logs went to stderr synchronously; stdout is flushed
// first when it is a pipe.
if (process.stdout.writableLength > 0) await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(code);
