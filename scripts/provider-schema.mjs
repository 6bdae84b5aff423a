// Extracts a small, deterministic AWS provider schema from the jsii manifest of @cdktn/provider-aws.
//
// Usage: node provider-schema.mjs <package dir> <types.txt> <out.json>
//   <package dir> is the unpacked npm tarball (holds .jsii and lib/<module>/index.js).
//
// How the manifest encodes Terraform (checked against real entries of 25.7.0):
// - A resource or data source is a class whose base is cdktn.TerraformResource / cdktn.TerraformDataSource and
//   whose docs summary says "Represents a {@link .../docs/resources/sqs_queue aws_sqs_queue}".
// - Its initializer's `config` parameter names the config struct, an interface whose `interfaces` include
//   cdktn.TerraformMetaArguments. A property without `optional: true` is required.
// - Each property's docs (summary, or remarks for blocks and long descriptions) hold a link
//   "{@link https://registry.terraform.io/...#snake_name Class#snake_name}": that anchor is the Terraform
//   name. camelCase -> snake_case is NOT reliable (s3FilesVolumeConfiguration is s3files_volume_configuration).
// - A nested block with at most one item is typed as its struct; a repeated block as
//   `IResolvable | Struct[]`. Map-of-struct types are object-typed attributes, not blocks.
// - Exported attributes are the class's own non-static getters, minus the `<arg>Input` getters. Getters have
//   no docs, so their Terraform names come from the compiled lib/<module>/index.js, where every getter reads
//   its attribute by its literal name (getStringAttribute('arn'), new XList(this, "dns_entry", ...)).
import fs from 'node:fs';
import path from 'node:path';

const PACKAGE = '@cdktn/provider-aws';
const VERSION = '25.7.0';
// cdktn.TerraformMetaArguments lives in the cdktn assembly, not in this manifest; these are the Terraform
// (JSON syntax) names of its properties: connection, count, dependsOn, forEach, lifecycle, provider, provisioners.
const META_ARGUMENTS = ['connection', 'count', 'depends_on', 'for_each', 'lifecycle', 'provider', 'provisioner'];
const META_IFACE = 'cdktn.TerraformMetaArguments';
const RESOLVABLE = 'cdktn.IResolvable';

const [pkgDir, typesPath, outPath] = process.argv.slice(2);
if (!pkgDir || !typesPath || !outPath) {
  console.error('usage: node provider-schema.mjs <package dir> <types.txt> <out.json>');
  process.exit(2);
}

const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, '.jsii'), 'utf8'));
if (manifest.name !== PACKAGE || manifest.version !== VERSION) {
  console.error(`expected ${PACKAGE}@${VERSION}, found ${manifest.name}@${manifest.version}`);
  process.exit(1);
}
const T = manifest.types;
const warnings = [];

const wanted = fs.readFileSync(typesPath, 'utf8').split('\n')
  .map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);

// Terraform type name ("aws_vpc" or "data.aws_region") -> class entry.
const LINK_RE = /\{@link https:\/\/registry\.terraform\.io\/providers\/[^ }]*\/docs\/(resources|data-sources)\/[a-z0-9_]+ ([a-z0-9_]+)\}/;
const classes = new Map();
let providerVersion;
for (const ty of Object.values(T)) {
  if (ty.kind !== 'class') continue;
  const data = ty.base === 'cdktn.TerraformDataSource';
  if (!data && ty.base !== 'cdktn.TerraformResource') continue;
  const m = LINK_RE.exec(ty.docs?.summary ?? '');
  if (!m) continue;
  providerVersion ??= /hashicorp\/aws\/([0-9.]+)\//.exec(ty.docs.summary)?.[1];
  classes.set((data ? 'data.' : '') + m[2], ty);
}

const ANCHOR_RE = /\{@link https:\/\/registry\.terraform\.io\/[^ }#]*#([A-Za-z0-9_]+) [A-Za-z0-9]+#[A-Za-z0-9_]+\}/;
const snake = (camel) => camel.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

function tfName(prop, where) {
  for (const text of [prop.docs?.summary, prop.docs?.remarks]) {
    const m = ANCHOR_RE.exec(text ?? '');
    if (m) return m[1];
  }
  const block = /^([a-z0-9_]+) block\./.exec(prop.docs?.summary ?? '');
  if (block) return block[1];
  warnings.push(`${where}.${prop.name}: no docs link, guessed ${snake(prop.name)}`);
  return snake(prop.name);
}

const isStruct = (t) => t.fqn && T[t.fqn]?.kind === 'interface' && T[t.fqn].datatype;
const withoutResolvable = (t) => {
  if (!t.union) return t;
  const rest = t.union.types.filter((u) => u.fqn !== RESOLVABLE);
  return rest.length === 1 ? rest[0] : t;
};

// The value kind of an argument as a Terraform-like type expression.
function kind(t) {
  t = withoutResolvable(t);
  if (t.primitive) return { string: 'string', number: 'number', boolean: 'bool', any: 'any', json: 'any' }[t.primitive] ?? t.primitive;
  if (t.collection) return `${t.collection.kind === 'array' ? 'list' : 'map'}(${kind(t.collection.elementtype)})`;
  if (isStruct(t)) return 'object';
  if (t.fqn === RESOLVABLE) return 'any';
  if (t.union) return t.union.types.map(kind).join('|');
  return t.fqn ?? JSON.stringify(t);
}

// Block nesting of a property type, or undefined when it is a plain argument.
function blockOf(t) {
  t = withoutResolvable(t);
  if (isStruct(t)) return { nesting: 'single', fqn: t.fqn };
  if (t.collection?.kind === 'array' && isStruct(t.collection.elementtype)) {
    return { nesting: 'list', fqn: t.collection.elementtype.fqn };
  }
  return undefined;
}

let argumentCount = 0;
let blockCount = 0;

function body(fqn, where, stack = []) {
  const arguments_ = {};
  const blocks = {};
  if (stack.includes(fqn)) throw new Error(`recursive block type ${fqn} at ${where}`);
  for (const prop of T[fqn].properties ?? []) {
    const name = tfName(prop, where);
    const required = !prop.optional;
    const block = blockOf(prop.type);
    if (block) {
      blockCount++;
      blocks[name] = { nesting: block.nesting, required, ...body(block.fqn, `${where}.${name}`, [...stack, fqn]) };
    } else {
      argumentCount++;
      arguments_[name] = { required, type: kind(prop.type) };
    }
  }
  return { arguments: arguments_, blocks };
}

// Terraform names of getters, read from the compiled module: "get x() { return this.getYAttribute('x_y'); }"
// (possibly wrapped, as in Fn.tolist(...)) or "_x = new XList(this, \"x_y\", ...); get x() { return this._x; }".
const jsCache = new Map();
function getterNames(cls) {
  const file = path.join(pkgDir, 'lib', path.dirname(cls.locationInModule.filename).replace(/^src\//, ''), 'index.js');
  if (!jsCache.has(file)) jsCache.set(file, fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  const js = jsCache.get(file);
  const start = js.indexOf(`class ${cls.name} extends`);
  const end = js.indexOf('\nclass ', start + 1);
  const src = start < 0 ? '' : js.slice(start, end < 0 ? undefined : end);
  const names = new Map();
  for (const m of src.matchAll(/get (\w+)\(\) \{\s*return [^;]*?this\.get\w*Attribute\('([^']+)'\)/g)) names.set(m[1], m[2]);
  for (const m of src.matchAll(/_(\w+) = new [\w.]+\(this, "([^"]+)"/g)) names.set(m[1], m[2]);
  return names;
}

const types = {};
const missing = [];
for (const name of wanted) {
  const cls = classes.get(name);
  if (!cls) {
    missing.push(name);
    continue;
  }
  const configFqn = cls.initializer?.parameters?.find((p) => p.name === 'config')?.type?.fqn;
  const config = T[configFqn];
  if (!config?.interfaces?.includes(META_IFACE)) {
    throw new Error(`${name}: config ${configFqn} does not extend ${META_IFACE}`);
  }
  const { arguments: args, blocks } = body(configFqn, name);

  const byCamel = new Map(config.properties.map((p) => [p.name, tfName(p, name)]));
  const fromJs = getterNames(cls);
  const attributes = new Set();
  for (const g of cls.properties ?? []) {
    if (g.static) continue;
    if (g.name.endsWith('Input') && byCamel.has(g.name.slice(0, -'Input'.length))) continue;
    let attr = byCamel.get(g.name) ?? fromJs.get(g.name);
    if (byCamel.has(g.name) && fromJs.has(g.name) && byCamel.get(g.name) !== fromJs.get(g.name)) {
      warnings.push(`${name}: getter ${g.name} is ${fromJs.get(g.name)} in the module but ${attr} in the docs`);
    }
    if (!attr) {
      attr = snake(g.name);
      warnings.push(`${name}: getter ${g.name} not found in compiled module, guessed ${attr}`);
    }
    attributes.add(attr);
  }
  types[name] = {
    kind: name.startsWith('data.') ? 'data' : 'resource',
    arguments: args,
    blocks,
    attributes: [...attributes].sort(),
  };
}

const schema = {
  source: { package: `${PACKAGE}@${VERSION}`, provider: 'hashicorp/aws', provider_version: providerVersion },
  generated_by: 'scripts/provider-schema.sh (do not edit by hand)',
  meta_arguments: META_ARGUMENTS,
  missing_types: missing,
  types,
};

// Sorted keys, two-space indent; an object or array of scalars stays on one line (one argument per line),
// except lists longer than a line, which go one item per line so diffs stay local.
function render(v, indent = '') {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const inner = indent + '  ';
  const scalar = (x) => x === null || typeof x !== 'object';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    const oneLine = `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
    if (v.every(scalar) && oneLine.length + indent.length < 100) return oneLine;
    return `[\n${v.map((x) => inner + render(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v).sort();
  if (keys.length === 0) return '{}';
  if (keys.every((k) => scalar(v[k]))) return `{${keys.map((k) => `${JSON.stringify(k)}: ${JSON.stringify(v[k])}`).join(', ')}}`;
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${render(v[k], inner)}`).join(',\n')}\n${indent}}`;
}
const text = render(schema) + '\n';
fs.mkdirSync(path.dirname(outPath), { recursive: true });
const unchanged = fs.existsSync(outPath) && fs.readFileSync(outPath, 'utf8') === text;
if (!unchanged) fs.writeFileSync(outPath, text);

const attributeCount = Object.values(types).reduce((n, t) => n + t.attributes.length, 0);
for (const w of warnings) console.log(`warning: ${w}`);
for (const m of missing) console.log(`missing: ${m} is not a type of ${PACKAGE}@${VERSION}`);
console.log(`${unchanged ? 'unchanged' : 'wrote'} ${outPath}: ${Object.keys(types).length} types ` +
  `(${missing.length} missing), ${argumentCount} arguments, ${blockCount} blocks, ${attributeCount} attributes, ` +
  `${text.length} bytes`);
