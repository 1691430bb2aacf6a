// bench/filter/peers_bench.mjs - parse the same corpus with the npm SCIM
// filter parsers, each filter to its AST, the way their READMEs call them;
// print filters/s per parser.
//
//   node peers_bench.mjs FILTERS_FILE SECONDS
//
// Like filter_bench.c: after a JIT warm-up, batches of BATCH_ROUNDS passes
// over the corpus for SECONDS; one line per parser:
// name<TAB>best<TAB>failed<TAB>mean, best being the rate of the fastest
// batch, mean the rate over the whole run, failed the corpus lines the
// parser refuses (they still count, as a thrown error, in the loop).
import { readFileSync } from "node:fs";
import { parse as scim2Parse } from "scim2-parse-filter";
import SCIMMY from "scimmy";

const BATCH_ROUNDS = 20;
const [file, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 2);
const filters = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");

const parsers = [
	["scim2-parse-filter 0.2.10", (f) => scim2Parse(f)],
	["scimmy 1.3.5 (Types.Filter)", (f) => new SCIMMY.Types.Filter(f)],
];

let sink = 0;
for (const [name, parse] of parsers) {
	let failed = 0;
	for (const f of filters) {
		try {
			parse(f);
		} catch (e) {
			failed++;
			process.stderr.write(`${name} refuses: ${f} (${e.message})\n`);
		}
	}
	const batch = () => {
		for (let r = 0; r < BATCH_ROUNDS; r++) {
			for (const f of filters) {
				try {
					sink += parse(f) ? 1 : 0;
				} catch (e) {
					sink++;
				}
			}
		}
	};
	const run = (limitMs) => {
		let best = Infinity;
		let batches = 0;
		const start = process.hrtime.bigint();
		let elapsed = 0;
		do {
			const t0 = process.hrtime.bigint();
			batch();
			const t = Number(process.hrtime.bigint() - t0) / 1e6;
			if (t < best) best = t;
			batches++;
			elapsed = Number(process.hrtime.bigint() - start) / 1e6;
		} while (elapsed < limitMs);
		const perBatch = BATCH_ROUNDS * filters.length;
		return [(perBatch / best) * 1000, ((perBatch * batches) / elapsed) * 1000];
	};
	run(Math.min(1000, seconds * 500)); // warm up the JIT
	const [best, mean] = run(seconds * 1000);
	console.log(`${name}\t${Math.round(best)}\t${failed}\t${Math.round(mean)}`);
}
if (sink < 0) console.log(sink);
