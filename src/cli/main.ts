// The `keyledger` command (bin/keyledger.js, `npm run keyledger -- ...`).
//
// Node 20 cannot even load this file (ERR_UNKNOWN_FILE_EXTENSION for `.ts`,
// before any line runs; the README says what to do). Node 22.18+ and 23.6+
// strip types too, so they get this far: stop them here with the version
// needed, before an import fails on something only Node 24 has.
const REQUIRED_MAJOR = 24;
if (!(Number(process.versions.node.split('.')[0]) >= REQUIRED_MAJOR)) {
  process.stderr.write(
    `keyledger needs Node.js ${REQUIRED_MAJOR} or later, but this is Node ${process.version} (${process.execPath}).\n` +
      `The project pins Node ${REQUIRED_MAJOR} as a dev dependency (after \`npm ci\`); run keyledger through npm, which uses it:\n` +
      '  npm run keyledger -- <command>    (or: npx keyledger <command>; npm start runs `dev`)\n',
  );
  process.exit(1);
}
// Imported after the check: a static import would be evaluated before it.
const { installPgTypeParsers } = await import('../store/pg-types.ts');
const { runCli } = await import('./cli.ts');

installPgTypeParsers();

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// Exit explicitly: a pool or timer some library left behind must not keep a
// finished command alive. Logs went to stderr synchronously; stdout is flushed
// first when it is a pipe.
if (process.stdout.writableLength > 0) await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(code);
