// Parses every ```mermaid block of the given Markdown files with the real Mermaid parser and exits
// non-zero naming each block that does not parse. `--self-test` first proves a broken diagram is
// rejected, so a parser that accepts everything cannot pass silently.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

// Mermaid expects a browser; jsdom provides the DOM it touches while parsing.
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

async function parses(source) {
  try {
    const result = await mermaid.parse(source);
    return { ok: true, type: result.diagramType };
  } catch (e) {
    return { ok: false, error: String(e.message ?? e).split('\n').slice(0, 3).join(' ') };
  }
}

const args = process.argv.slice(2);
let failed = 0;
if (args[0] === '--self-test') {
  args.shift();
  const broken = await parses('flowchart LR\n  a["unclosed --> b\n');
  const fine = await parses('flowchart LR\n  a["A"] -->|"x"| b("B")\n');
  if (broken.ok || !fine.ok) {
    console.error('mermaid-check: self-test failed: the parser must reject a broken diagram and accept a valid one');
    process.exit(1);
  }
}
let blocks = 0;
for (const file of args) {
  const text = readFileSync(file, 'utf8');
  const re = /```mermaid\n([\s\S]*?)```/g;
  let m;
  while ((m = re.exec(text)) !== null) {
    blocks += 1;
    const line = text.slice(0, m.index).split('\n').length;
    const r = await parses(m[1]);
    if (r.ok) {
      console.log(`mermaid-check: ${file}:${line}: ${r.type} parses`);
    } else {
      failed += 1;
      console.error(`mermaid-check: ${file}:${line}: ${r.error}`);
    }
  }
}
if (blocks === 0) {
  console.error('mermaid-check: no mermaid blocks found');
  process.exit(1);
}
process.exit(failed ? 1 : 0);
