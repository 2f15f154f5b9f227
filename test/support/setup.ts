// Each test file's process, as src/cli/main.ts does for the keyledger command:
// pg's json and jsonb parsers are parseJson before any database is opened.
import { installPgTypeParsers } from '../../src/store/pg-types.ts';

installPgTypeParsers();
