// bench/filter/peers_bench.mjs - parse the same corpus with the npm SCIM
// filter parsers, in a loop for a given time; print filters/s per parser.
//
//   node peers_bench.mjs FILTERS_FILE SECONDS
//
// Output, one line per parser: name<TAB>filters/s<TAB>failed (corpus lines
// the parser refuses; they still count, as a thrown error, in the loop).
import { readFileSync } from "node:fs";
import { parse as scim2Parse } from "scim2-parse-filter";
import SCIMMY from "scimmy";

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
	// warm up the JIT, then measure
	const run = (limitMs) => {
		let n = 0;
		const start = process.hrtime.bigint();
		let elapsed = 0;
		do {
			for (let r = 0; r < 20; r++) {
				for (const f of filters) {
					try {
						sink += parse(f) ? 1 : 0;
					} catch (e) {
						sink++;
					}
					n++;
				}
			}
			elapsed = Number(process.hrtime.bigint() - start) / 1e6;
		} while (elapsed < limitMs);
		return (n / elapsed) * 1000;
	};
	run(Math.min(1000, seconds * 500));
	const rate = run(seconds * 1000);
	console.log(`${name}\t${Math.round(rate)}\t${failed}`);
}
if (sink < 0) console.log(sink);
