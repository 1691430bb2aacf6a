// bench/patch/scimmy_bench.mjs - baseline: the same PATCH workloads through
// the scimmy package (SCIMMY.Messages.PatchOp#apply on a User with the
// Enterprise extension).  Prints one line per workload: name<TAB>ops/s.
// Usage: node scimmy_bench.mjs workloads.json seconds
import { readFileSync } from "node:fs";
import SCIMMY from "scimmy";

const [, , file, secondsArg] = process.argv;
const seconds = Number(secondsArg || 2);
const spec = JSON.parse(readFileSync(file, "utf8"));
SCIMMY.Resources.declare(SCIMMY.Resources.User);
SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);

for (const w of spec.workloads) {
	const body = {schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: w.operations};
	const once = async () => {
		const target = new SCIMMY.Schemas.User(spec.resource);
		return new SCIMMY.Messages.PatchOp(body).apply(target);
	};
	await once();			// warm up; a failure here is reported, not timed
	let n = 0;
	const start = process.hrtime.bigint();
	const limit = BigInt(Math.round(seconds * 1e9));
	while (process.hrtime.bigint() - start < limit) {
		for (let i = 0; i < 100; i++)
			await once();
		n += 100;
	}
	const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
	console.log(`${w.name}\t${(n / elapsed).toFixed(0)}`);
}
