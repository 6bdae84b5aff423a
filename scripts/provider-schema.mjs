// Extracts the one committed AWS provider schema (tfjson/provider-schema/aws.json): for the provider itself and
// for every type in tfjson/provider-schema/types.txt, each attribute with its cty type and required / optional /
// computed flags, and each nested block with its nesting mode and item limits. tfstandin serves it to
// Terraform; tfjson projects it for the conformance check.
//
// Usage: node provider-schema.mjs <package dir> <types.txt> <out.json>
//   <package dir> is the unpacked npm tarball of @cdktn/provider-aws (holds .jsii and lib/<module>/index.js).
//
// It reads the compiled modules as well as the .jsii manifest, because only they carry what Terraform itself
// needs (checked against real entries of 25.7.0):
// - every field of a resource, data source or nested-block class is introduced by a generated comment
//   "// <tf name> - computed: <bool>, optional: <bool>, required: <bool>", followed by its getter;
// - the getter says the type of a computed value: getStringAttribute, getNumberAttribute, getBooleanAttribute,
//   get(Number)ListAttribute (wrapped in Fn.tolist when the attribute is a set), get*MapAttribute, or a field
//   `_x = new XList(this, "x", <wrapsSet>)` / `new XOutputReference(this, "x")` / `new cdktn.StringMap(...)`;
// - `synthesizeHclAttributes` (and `<struct>ToHclTerraform` for nested blocks) lists every argument with
//   `isBlock`, `type` (simple / list / set / map / struct) and `storageClassType` (string, stringList, ... or
//   the class of a nested struct). A block held by an OutputReference rather than a List class has at most one
//   item.
import fs from 'node:fs';
import path from 'node:path';

const PACKAGE = '@cdktn/provider-aws';
const VERSION = '25.7.0';

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

const LINK_RE = /\{@link https:\/\/registry\.terraform\.io\/providers\/[^ }]*\/docs\/(resources|data-sources)\/[a-z0-9_]+ ([a-z0-9_]+)\}/;
const classes = new Map();
let providerClass;
let providerVersion;
for (const ty of Object.values(T)) {
  if (ty.kind !== 'class') continue;
  if (ty.base === 'cdktn.TerraformProvider' && ty.name === 'AwsProvider') providerClass = ty;
  const data = ty.base === 'cdktn.TerraformDataSource';
  if (!data && ty.base !== 'cdktn.TerraformResource') continue;
  const m = LINK_RE.exec(ty.docs?.summary ?? '');
  if (!m) continue;
  providerVersion ??= /hashicorp\/aws\/([0-9.]+)\//.exec(ty.docs.summary)?.[1];
  classes.set((data ? 'data.' : '') + m[2], ty);
}
if (!providerClass) throw new Error('no AwsProvider class in the manifest');

const jsCache = new Map();
function moduleSource(cls) {
  const file = path.join(pkgDir, 'lib', path.dirname(cls.locationInModule.filename).replace(/^src\//, ''), 'index.js');
  if (!jsCache.has(file)) jsCache.set(file, fs.readFileSync(file, 'utf8'));
  return jsCache.get(file);
}

// The text of `class <name> ...` or `function <name>(...)` up to the next top-level declaration.
function section(js, header) {
  const start = js.indexOf(header);
  if (start < 0) return undefined;
  const rest = js.slice(start + header.length);
  const end = rest.search(/\n(class |function |exports\.)/);
  return header + (end < 0 ? rest : rest.slice(0, end));
}
const classSrc = (js, name) => section(js, `class ${name} extends`);
const lowerFirst = (s) => s[0].toLowerCase() + s.slice(1);

// Arguments as the HCL synthesizer lists them: name -> {isBlock, type, storage}.
const HCL_ENTRY = /\n\s+([a-z0-9_]+): \{\n\s+value: [^\n]*\n\s+isBlock: (true|false),\n\s+type: "(\w+)",\n\s+storageClassType: "(\w+)",/g;
function hclEntries(src) {
  const out = new Map();
  for (const m of (src ?? '').matchAll(HCL_ENTRY)) out.set(m[1], { isBlock: m[2] === 'true', type: m[3], storage: m[4] });
  return out;
}

// Fields of a class: tf name -> {computed, optional, required, text of the field's declarations}.
const FIELD = /\n\s+\/\/ ([a-z0-9_]+) - computed: (true|false), optional: (true|false), required: (true|false)\n/g;
function fields(src) {
  const out = new Map();
  const hits = [...(src ?? '').matchAll(FIELD)];
  hits.forEach((m, i) => {
    const text = src.slice(m.index + m[0].length, i + 1 < hits.length ? hits[i + 1].index : undefined);
    out.set(m[1], { computed: m[2] === 'true', optional: m[3] === 'true', required: m[4] === 'true', text });
  });
  return out;
}

const PRIMITIVE = { string: 'string', number: 'number', boolean: 'bool', any: 'dynamic' };
const STORAGE = {
  string: 'string', number: 'number', boolean: 'bool', any: 'dynamic',
  stringList: ['list', 'string'], numberList: ['list', 'number'], booleanList: ['list', 'bool'],
  stringMap: ['map', 'string'], numberMap: ['map', 'number'], booleanMap: ['map', 'bool'], anyMap: ['map', 'dynamic'],
  stringListList: ['list', ['list', 'string']], numberListList: ['list', ['list', 'number']],
  stringMapList: ['list', ['map', 'string']], stringMapMap: ['map', ['map', 'string']],
  stringListMap: ['map', ['list', 'string']],
};
const GETTER = {
  String: 'string', Number: 'number', Boolean: 'bool', Any: 'dynamic',
  List: ['list', 'string'], NumberList: ['list', 'number'], BooleanList: ['list', 'bool'],
  StringMap: ['map', 'string'], NumberMap: ['map', 'number'], BooleanMap: ['map', 'bool'], AnyMap: ['map', 'dynamic'],
};
const CDKTN_CLASS = {
  'cdktn.StringMap': ['map', 'string'], 'cdktn.NumberMap': ['map', 'number'], 'cdktn.BooleanMap': ['map', 'bool'],
  'cdktn.AnyMap': ['map', 'dynamic'], 'cdktn.StringMapList': ['list', ['map', 'string']],
  'cdktn.NumberMapList': ['list', ['map', 'number']], 'cdktn.BooleanMapList': ['list', ['map', 'bool']],
  'cdktn.AnyMapList': ['list', ['map', 'dynamic']], 'cdktn.StringListMap': ['map', ['list', 'string']],
  'cdktn.NumberListMap': ['map', ['list', 'number']], 'cdktn.BooleanListMap': ['map', ['list', 'bool']],
  'cdktn.AnyListMap': ['map', ['list', 'dynamic']],
};
const asSet = (t) => (Array.isArray(t) && t[0] === 'list' ? ['set', t[1]] : t);

// The struct behind a storage class: "FooList" / "FooMap" / "FooOutputReference" / "Foo" -> "Foo".
const structOf = (storage) => storage.replace(/(List|Map|OutputReference)$/, '');

let attributeCount = 0;
let blockCount = 0;

// A block body: the fields of `src` (a resource class or an OutputReference class), with `hcl` giving the
// arguments (absent for computed-only nested objects).
function block(js, src, hcl, where, depth = 0) {
  if (depth > 12) throw new Error(`nesting too deep at ${where}`);
  const attributes = {};
  const blocks = {};
  const fs_ = fields(src);
  const names = new Set([...fs_.keys(), ...hcl.keys()]);
  for (const name of [...names].sort()) {
    const f = fs_.get(name) ?? { computed: false, optional: true, required: false, text: '' };
    const arg = hcl.get(name);
    if (!f.computed && !f.optional && !f.required) warnings.push(`${where}.${name}: no flags`);
    if (arg?.isBlock) {
      const struct = structOf(arg.storage);
      const nesting = arg.type === 'struct' ? 'single' : arg.type;
      if (!['list', 'set', 'single'].includes(nesting)) throw new Error(`${where}.${name}: block nesting ${arg.type}`);
      const single = new RegExp(`_\\w+ = new ${struct}OutputReference\\(this, "${name}"`).test(f.text);
      blocks[name] = {
        nesting,
        min_items: f.required ? 1 : 0,
        max_items: nesting === 'single' || single ? 1 : 0,
        block: structBlock(js, struct, `${where}.${name}`, depth),
      };
      blockCount++;
      continue;
    }
    let type;
    if (arg) type = argumentType(js, arg, `${where}.${name}`, depth);
    else type = getterType(js, f.text, name, `${where}.${name}`, depth);
    const flags = f.required ? { required: true } : { optional: f.optional || undefined, computed: f.computed || undefined };
    if (!arg && !f.computed) {
      // A field with a getter but no argument is computed whatever its comment says.
      flags.optional = undefined;
      flags.computed = true;
    }
    attributes[name] = { type, ...flags };
    attributeCount++;
  }
  return { attributes, blocks };
}

// A nested struct as a block body: its OutputReference class holds the flags and getters, its ToHclTerraform
// function lists its arguments.
function structBlock(js, struct, where, depth) {
  const src = classSrc(js, `${struct}OutputReference`) ?? '';
  const hcl = hclEntries(section(js, `function ${lowerFirst(struct)}ToHclTerraform(`));
  if (!src && hcl.size === 0) throw new Error(`${where}: no class or synthesizer for ${struct}`);
  return block(js, src, hcl, where, depth + 1);
}

// An object type from a struct's block body (nested attributes are objects of their fields).
function objectType(body) {
  const attrs = {};
  for (const [n, a] of Object.entries(body.attributes)) attrs[n] = a.type;
  for (const [n, b] of Object.entries(body.blocks)) {
    const o = objectType(b.block);
    attrs[n] = b.nesting === 'single' ? o : [b.nesting, o];
  }
  return ['object', attrs];
}

function argumentType(js, arg, where, depth) {
  if (arg.type === 'simple' && PRIMITIVE[arg.storage]) return PRIMITIVE[arg.storage];
  if (STORAGE[arg.storage]) {
    const t = STORAGE[arg.storage];
    return arg.type === 'set' ? asSet(t) : t;
  }
  // A nested attribute: an object, or a list / set / map of objects.
  const o = objectType(structBlock(js, structOf(arg.storage), where, depth));
  if (arg.type === 'struct') return o;
  if (['list', 'set', 'map'].includes(arg.type)) return [arg.type, o];
  throw new Error(`${where}: argument kind ${arg.type} ${arg.storage}`);
}

function getterType(js, text, name, where, depth) {
  const get = /get \w+\(\) \{\s*return ([^;]*);/.exec(text);
  if (!get) throw new Error(`${where}: no getter`);
  const expr = get[1];
  const attr = /this\.get(\w*)Attribute\('([^']+)'\)/.exec(expr);
  if (attr) {
    const t = GETTER[attr[1]];
    if (!t) throw new Error(`${where}: getter kind get${attr[1]}Attribute`);
    return /Fn\.tolist\(/.test(expr) ? asSet(t) : t;
  }
  const made = new RegExp(`_\\w+ = new ([\\w.]+)\\(this, "${name}"(?:, (true|false))?\\)`).exec(text);
  if (!made) throw new Error(`${where}: getter ${expr} has no known shape`);
  const [, cls, wrapsSet] = made;
  if (CDKTN_CLASS[cls]) return CDKTN_CLASS[cls];
  if (cls.startsWith('cdktn.')) throw new Error(`${where}: ${cls}`);
  const o = objectType(structBlock(js, structOf(cls), where, depth));
  if (cls.endsWith('OutputReference')) return o;
  if (cls.endsWith('Map')) return ['map', o];
  if (cls.endsWith('List')) return [wrapsSet === 'true' ? 'set' : 'list', o];
  throw new Error(`${where}: class ${cls}`);
}

function typeSchema(name, cls) {
  const js = moduleSource(cls);
  const src = classSrc(js, cls.name);
  if (!src) throw new Error(`${name}: class ${cls.name} not found in its module`);
  return block(js, src, hclEntries(section(src, 'synthesizeHclAttributes()')), name);
}

const resources = {};
const dataSources = {};
const missing = [];
for (const name of wanted) {
  const cls = classes.get(name);
  if (!cls) {
    missing.push(name);
    continue;
  }
  if (name.startsWith('data.')) dataSources[name.slice('data.'.length)] = typeSchema(name, cls);
  else resources[name] = typeSchema(name, cls);
}
const provider = typeSchema('provider', providerClass);
if (missing.length) throw new Error(`not in ${PACKAGE}@${VERSION}: ${missing.join(', ')}`);

const schema = {
  source: { package: `${PACKAGE}@${VERSION}`, provider: 'hashicorp/aws', provider_version: providerVersion },
  generated_by: 'scripts/provider-schema.sh (do not edit by hand)',
  provider,
  resources,
  data_sources: dataSources,
};

// Sorted keys, two-space indent; one attribute per line so diffs stay local.
function render(v, indent = '') {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
  if (keys.length === 0) return '{}';
  // An attribute ({type, required, ...}) is a leaf: its values are scalars or cty type arrays.
  const leaf = keys.every((k) => v[k] === null || typeof v[k] !== 'object' || Array.isArray(v[k]));
  if (leaf) return `{${keys.map((k) => `${JSON.stringify(k)}: ${JSON.stringify(v[k])}`).join(', ')}}`;
  const inner = indent + '  ';
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${render(v[k], inner)}`).join(',\n')}\n${indent}}`;
}
const text = render(schema) + '\n';
fs.mkdirSync(path.dirname(outPath), { recursive: true });
const unchanged = fs.existsSync(outPath) && fs.readFileSync(outPath, 'utf8') === text;
if (!unchanged) fs.writeFileSync(outPath, text);

for (const w of warnings) console.log(`warning: ${w}`);
console.log(`${unchanged ? 'unchanged' : 'wrote'} ${outPath}: ${Object.keys(resources).length} resource types, ` +
  `${Object.keys(dataSources).length} data sources, ${attributeCount} attributes, ${blockCount} blocks, ` +
  `${text.length} bytes`);
