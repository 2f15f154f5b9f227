#!/usr/bin/env node
// The CLI is written in TypeScript and run by Node 24's built-in type stripping
// (no build step). npm scripts and `npx keyledger` put the pinned Node 24 first
// on PATH; run it with an older node and it fails on the first type annotation.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(`keyledger needs Node 24 or later (this is ${process.version}). Run it through npm: npx keyledger ... or npm run keyledger -- ...`);
  process.exit(1);
}
await import('../src/cli/main.ts');
