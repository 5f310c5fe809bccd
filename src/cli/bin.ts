// Entry of the single-file build (dist/deployctl.mjs): the whole CLI in one file that runs with node alone.
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
