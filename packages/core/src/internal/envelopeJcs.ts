/**
 * RFC 8785 form of an unsealed envelope, written by hand for its known shape: the keys of every fixed object are
 * emitted in their sorted order without sorting, and only the open maps (`resources`) go through the generic
 * serializer. Sealing runs on every admission, and this is about twice as fast as the generic pass.
 *
 * It must produce exactly what the generic serializer produces: `Envelope.verifySeal` recomputes with the generic one,
 * so a divergence (say, a field added to the envelope but not here) fails every seal check in the test suite.
 */
import type { UnsealedEnvelope } from "../Envelope.ts"
import { canonicalize, type JcsFailure } from "./jcs.ts"

class Unserializable {
  constructor(readonly failure: JcsFailure | undefined) {}
}

const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]/

const str = (s: string): string => {
  if (!NEEDS_CARE.test(s)) return `"${s}"`
  if (!s.isWellFormed()) throw new Unserializable(undefined)
  return JSON.stringify(s)
}

const strings = (xs: ReadonlyArray<string>): string => {
  let out = "["
  for (let i = 0; i < xs.length; i++) out += i === 0 ? str(xs[i]!) : "," + str(xs[i]!)
  return out + "]"
}

const open = (value: unknown): string => {
  const out = canonicalize(value, 62, true)
  if (typeof out !== "string") throw new Unserializable(out)
  return out
}

const int = (n: number): string => {
  if (!Number.isSafeInteger(n)) throw new Unserializable(undefined)
  return String(n)
}

/** The canonical text, or undefined when some value needs the generic serializer's verdict. */
export const canonicalEnvelope = (e: UnsealedEnvelope): string | undefined => {
  try {
    const c = e.cache
    let out = `{"cache":{"eligible":${c.eligible ? "true" : "false"},"hit":${c.hit ? "true" : "false"}`
    if (c.key !== undefined) out += `,"key":${str(c.key)}`
    if (c.reason !== undefined) out += `,"reason":${str(c.reason)}`
    const d = e.decision
    out +=
      `},"decision":{"decidedAt":${str(d.decidedAt)},"matchedRules":${strings(d.matchedRules)},` +
      `"outcome":${str(d.outcome)},"policySnapshotId":${str(d.policySnapshotId)},"rationale":${str(d.rationale)},` +
      `"reasonCodes":${strings(d.reasonCodes)}}`
    const x = e.execution
    out += `,"execution":{"action":${str(x.action)}`
    if (x.class !== undefined) out += `,"class":${str(x.class)}`
    out += `,"inputDigest":${str(x.inputDigest)},"tool":${str(x.tool)}`
    if (x.toolVersion !== undefined) out += `,"toolVersion":${str(x.toolVersion)}`
    out += "}"
    const g = e.granted
    if (g !== undefined) {
      out += `,"granted":{"capabilities":${strings(g.capabilities)}`
      const a = g.escalation
      if (a !== undefined) {
        out +=
          `,"escalation":{"approvedBy":${str(a.approvedBy)},"capabilities":${strings(a.capabilities)},` +
          `"fromTier":${int(a.fromTier)},"justification":${str(a.justification)},"reason":${str(a.reason)},` +
          `"toTier":${int(a.toTier)}}`
      }
      out += `,"expiresAt":${str(g.expiresAt)},"pool":${str(g.pool)},"resources":${open(g.resources)},"tier":${int(g.tier)}}`
    }
    out += `,"id":${str(e.id)},"receivedAt":${str(e.receivedAt)}`
    const r = e.requested
    out += `,"requested":{"capabilities":${strings(r.capabilities)}`
    if (r.escalation !== undefined) {
      out += `,"escalation":{"justification":${str(r.escalation.justification)},"reason":${str(r.escalation.reason)}}`
    }
    out += `,"resources":${open(r.resources)}`
    if (r.runtime !== undefined) out += `,"runtime":${open(r.runtime)}`
    if (r.tier !== undefined) out += `,"tier":${int(r.tier)}`
    const t = e.runtime
    out += '},"runtime":{'
    let sep = ""
    if (t.detail !== undefined) {
      out += `"detail":${str(t.detail)}`
      sep = ","
    }
    if (t.fingerprint !== undefined) {
      out += `${sep}"fingerprint":${str(t.fingerprint)}`
      sep = ","
    }
    out += `${sep}"verdict":${str(t.verdict)}}`
    const s = e.scope
    out += ',"scope":{'
    sep = ""
    if (s.dataClassification !== undefined) {
      out += `"dataClassification":${str(s.dataClassification)}`
      sep = ","
    }
    out += `${sep}"environment":${str(s.environment)}`
    if (s.project !== undefined) out += `,"project":${str(s.project)}`
    if (s.region !== undefined) out += `,"region":${str(s.region)}`
    out += `},"state":${str(e.state)}`
    const p = e.subject
    out += ',"subject":{'
    if (p.delegation !== undefined) {
      out += '"delegation":['
      for (let i = 0; i < p.delegation.length; i++) {
        const link = p.delegation[i]!
        out += `${i === 0 ? "" : ","}{"id":${str(link.id)},"kind":${str(link.kind)}}`
      }
      out += "],"
    }
    out += `"id":${str(p.id)},"kind":${str(p.kind)},"roles":${strings(p.roles)}`
    if (p.tenant !== undefined) out += `,"tenant":${str(p.tenant)}`
    return out + `},"version":${int(e.version)}}`
  } catch (e) {
    if (e instanceof Unserializable) return undefined
    throw e
  }
}
