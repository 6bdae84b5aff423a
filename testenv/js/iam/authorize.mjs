// Evaluates IAM requests for the test emulator with a real policy engine
// (@cloud-copilot/iam-simulate): one JSON simulation per line on stdin (iam-simulate's
// `Simulation`), one JSON answer per line on stdout, in order:
//   {"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "why": "...", "errors": ...}
// `why` names, for a denial, the policy type that decided it, in the words of AWS's AccessDenied
// messages ("no identity-based policy allows", "an explicit deny in a resource-based policy", ...).
import { createInterface } from 'node:readline'
import { runSimulation } from '@cloud-copilot/iam-simulate'

// The analyses of a request, in the order AWS names them in an AccessDenied message.
const KINDS = [
  ['scpAnalysis', 'service control policy'],
  ['rcpAnalysis', 'resource control policy'],
  ['endpointAnalysis', 'VPC endpoint policy'],
  ['permissionBoundaryAnalysis', 'permissions boundary'],
  ['identityAnalysis', 'identity-based policy'],
  ['resourceAnalysis', 'resource-based policy']
]

function why(analysis) {
  if (!analysis) return ''
  for (const [key, name] of KINDS) {
    const a = analysis[key]
    if (a && a.result === 'ExplicitlyDenied') {
      const sids = (a.denyStatements || []).map((s) => s.statement?.Sid || s.explain?.identifier).filter(Boolean)
      return `with an explicit deny in a ${name}${sids.length ? ` (${sids.join(', ')})` : ''}`
    }
  }
  for (const [key, name] of KINDS) {
    const a = analysis[key]
    if (a && a.result !== 'Allowed' && a.result !== 'NotApplicable' && key !== 'resourceAnalysis') {
      return `because no ${name} allows the action`
    }
  }
  return 'because no policy allows the action'
}

async function answer(line) {
  try {
    const simulation = JSON.parse(line)
    const r = await runSimulation(simulation, {})
    if (r.resultType === 'error') {
      return { decision: 'Error', errors: r.errors }
    }
    const analysis = r.result?.analysis
    const decision = r.overallResult
    return { decision, why: decision === 'Allowed' ? '' : why(analysis) }
  } catch (e) {
    return { decision: 'Error', errors: { message: String(e && e.stack ? e.stack : e) } }
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  process.stdout.write(JSON.stringify(await answer(line)) + '\n')
}
