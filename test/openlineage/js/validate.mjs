// validate.mjs <schema dir> <events.json>: validates every OpenLineage
// event in events.json (a JSON array) against <schema dir>/OpenLineage.json
// (Draft 2020-12) and each facet it carries against its facet schema in
// <schema dir>/facets. Prints {"valid":N,"invalid":[{"index","errors"}]}
// and exits 1 when any event is invalid.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [dir, eventsPath] = process.argv.slice(2);
if (!dir || !eventsPath) {
  console.error("usage: validate.mjs <schema dir> <events.json>");
  process.exit(2);
}
// strict: false because the spec uses the non-standard "example" keyword.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const spec = JSON.parse(readFileSync(join(dir, "OpenLineage.json"), "utf8"));
ajv.addSchema(spec);
const facetSchemas = {};
for (const f of readdirSync(join(dir, "facets"))) {
  const s = JSON.parse(readFileSync(join(dir, "facets", f), "utf8"));
  ajv.addSchema(s);
  for (const name of Object.keys(s.properties ?? {})) facetSchemas[name] = s.$id;
}
const event = ajv.getSchema(spec.$id);

// facetErrors validates a facets object key by key against the facet
// schemas that define the key; an unknown facet key is an error (the test
// must know every facet it sends).
function facetErrors(where, facets) {
  const errs = [];
  for (const [name, value] of Object.entries(facets ?? {})) {
    const id = facetSchemas[name];
    if (!id) {
      errs.push({ where, message: `facet ${name} has no schema in testdata/facets` });
      continue;
    }
    const v = ajv.getSchema(id);
    if (!v({ [name]: value })) errs.push({ where: `${where}.${name}`, errors: v.errors });
  }
  return errs;
}

const events = JSON.parse(readFileSync(eventsPath, "utf8"));
const invalid = [];
events.forEach((e, index) => {
  const errors = [];
  if (!event(e)) errors.push(...event.errors);
  errors.push(...facetErrors("job.facets", e.job?.facets));
  for (const [kind, list] of [["inputs", e.inputs], ["outputs", e.outputs]]) {
    (list ?? []).forEach((d, i) => errors.push(...facetErrors(`${kind}[${i}].facets`, d.facets)));
  }
  if (errors.length) invalid.push({ index, errors });
});
console.log(JSON.stringify({ valid: events.length - invalid.length, invalid }));
process.exit(invalid.length ? 1 : 0);
