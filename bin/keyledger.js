#!/usr/bin/env -S node --max-semi-space-size=16
// The CLI is written in TypeScript and run by Node 24's built-in type stripping
// (no build step). npm scripts and `npx keyledger` put the pinned Node 24 (the
// `node` dev dependency) first on PATH; an older node would fail on the first
// .ts import with a bare ERR_UNKNOWN_FILE_EXTENSION, so say what is wrong first.
// --max-semi-space-size=16: a young generation of at most 16 MB per semi-space keeps each scavenge
// pause short (README, "Configuration"); npm start and npm run keyledger pass it too.
// Plain JavaScript that any Node still parses: this file must run to tell.
const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= REQUIRED_MAJOR)) {
  process.stderr.write(
    `keyledger needs Node.js ${REQUIRED_MAJOR} or later, but this is Node ${process.version} (${process.execPath}).\n` +
      `It runs its TypeScript sources with Node ${REQUIRED_MAJOR}'s type stripping, no build step. The project pins Node ${REQUIRED_MAJOR}\n` +
      'as a dev dependency (after `npm ci`), and npm runs it for you:\n' +
      '  npm run keyledger -- <command>    (or: npx keyledger <command>; npm start runs `dev`)\n',
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
