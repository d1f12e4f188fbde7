import { createHash } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import {
  Attestor,
  currentManifest,
  defaultDriftPolicy,
  driftLevel,
  fingerprint,
  ManifestError,
  type AttestInput,
  type DriftPolicy,
  type RuntimeManifest
} from "../src/Attestor.ts"

const HOUR = 60 * 60 * 1000

const base: RuntimeManifest = {
  interpreter: { name: "node", version: "20.19.0" },
  os: { platform: "linux", arch: "x64", release: "6.1.0", baseImageDigest: "sha256:abc" },
  lockfileDigests: { "pnpm-lock.yaml": "a".repeat(64) },
  adapterVersion: "express@1.0.0",
  sandboxProfile: "in-process/v1"
}
const withVersion = (version: string): RuntimeManifest => ({ ...base, interpreter: { name: "node", version } })

const run = <A, E>(effect: Effect.Effect<A, E, Attestor>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(Attestor.layer), Effect.provide(TestClock.layer())))

const input = (over: Partial<AttestInput> = {}): AttestInput => ({
  tier: 0,
  executionClass: "network",
  environment: "prod",
  now: 0,
  drift: defaultDriftPolicy,
  ...over
})

describe("fingerprint", () => {
  it("is the SHA-256 of the canonical manifest: key order does not matter, every field does", () => {
    const fp = fingerprint(base)
    expect(fp).toMatch(/^[0-9a-f]{64}$/)
    const { sandboxProfile, ...rest } = base
    const reordered: RuntimeManifest = { sandboxProfile, ...rest }
    expect(Object.keys(reordered)[0]).toBe("sandboxProfile")
    expect(fingerprint(reordered)).toBe(fp)
    expect(fingerprint(withVersion("20.19.1"))).not.toBe(fp)
    expect(fingerprint({ ...base, sandboxProfile: "in-process/v2" })).not.toBe(fp)
    expect(fingerprint({ ...base, lockfileDigests: { "pnpm-lock.yaml": "b".repeat(64) } })).not.toBe(fp)
    expect(fingerprint({ ...base, toolPackageDigest: "c".repeat(64) })).not.toBe(fp)
  })
})

describe("driftLevel", () => {
  it("classifies interpreter bumps and rejects any other difference", () => {
    expect(driftLevel(base, base)).toBe("none")
    expect(driftLevel(base, withVersion("20.19.4"))).toBe("patch")
    expect(driftLevel(base, withVersion("20.20.0"))).toBe("minor")
    expect(driftLevel(base, withVersion("22.0.0"))).toBe("incompatible")
    expect(driftLevel(base, withVersion("nightly"))).toBe("incompatible")
    expect(driftLevel(base, { ...base, os: { ...base.os, arch: "arm64" } })).toBe("incompatible")
    expect(driftLevel(base, { ...withVersion("20.19.1"), adapterVersion: "express@1.0.1" })).toBe("incompatible")
  })
})

describe("currentManifest", () => {
  it("describes this process and digests lockfiles", async () => {
    const dir = mkdtempSync(join(tmpdir(), "egl-attestor-"))
    const lock = join(dir, "pnpm-lock.yaml")
    writeFileSync(lock, "lockfileVersion: '9.0'\n")
    const m = await Effect.runPromise(
      currentManifest({ lockfiles: [lock], adapterVersion: "nest@1", toolPackageDigest: "d".repeat(64) })
    )
    expect(m.interpreter).toEqual({ name: "node", version: process.versions.node })
    expect(m.os.platform).toBe(process.platform)
    expect(m.os.arch).toBe(process.arch)
    expect(m.lockfileDigests).toEqual({ [lock]: createHash("sha256").update("lockfileVersion: '9.0'\n").digest("hex") })
    expect(m.adapterVersion).toBe("nest@1")
    expect(m.sandboxProfile).toBe("in-process")
    expect(m.toolPackageDigest).toBe("d".repeat(64))
  })

  it("fails with a typed error when a lockfile is missing", async () => {
    const error = await Effect.runPromise(
      Effect.flip(currentManifest({ lockfiles: ["/nonexistent/egl/pnpm-lock.yaml"] }))
    )
    expect(error).toBeInstanceOf(ManifestError)
    expect(error.reason).toBe("lockfile-unreadable")
  })
})

describe("Attestor", () => {
  it("rejects an invalid registration with a typed error", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const bad = { workerId: "w", tier: 0, manifest: { ...base, adapterVersion: 42 } } as never
        const error = yield* Effect.flip(attestor.register(bad))
        expect(error._tag).toBe("ManifestError")
        expect(error.reason).toBe("invalid")
        const badTier = yield* Effect.flip(attestor.register({ workerId: "w", tier: 7, manifest: base } as never))
        expect(badTier.reason).toBe("invalid")
        const lone = yield* Effect.flip(
          attestor.register({ workerId: "w", tier: 0, manifest: { ...base, sandboxProfile: "\ud800" } })
        )
        expect(lone.reason).toBe("invalid")
        expect(yield* attestor.workers(0)).toEqual([])
      })
    ))

  it("is unattested without workers, and says so when every worker is quarantined", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        expect(attestor.attest(input())).toMatchObject({ verdict: "unattested", code: "RUNTIME_UNATTESTED" })
        const fp = yield* attestor.register({ workerId: "w1", tier: 0, manifest: base })
        const q = yield* attestor.quarantine(fp, "policy violation #7")
        expect(q).toMatchObject({
          fingerprint: fp,
          reason: "policy violation #7",
          alreadyQuarantined: false,
          known: true
        })
        expect(q.workers).toEqual([{ workerId: "w1", tier: 0 }])
        const a = attestor.attest(input())
        expect(a.verdict).toBe("unattested")
        expect(a.code).toBe("RUNTIME_QUARANTINED")
        expect(a.fingerprint).toBeUndefined()
        // Quarantine is sticky: the first reason is kept, and a pinned request for it is not served either.
        expect((yield* attestor.quarantine(fp, "again")).alreadyQuarantined).toBe(true)
        expect(attestor.attest(input({ constraint: { fingerprint: fp } })).code).toBe("RUNTIME_QUARANTINED")
        expect((yield* attestor.workers(0))[0]!.quarantined).toBe(true)
      })
    ))

  it("serves a healthy worker when another fingerprint of the tier is quarantined", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const bad = yield* attestor.register({ workerId: "w1", tier: 1, manifest: base })
        const good = yield* attestor.register({ workerId: "w2", tier: 1, manifest: withVersion("20.19.1") })
        yield* attestor.quarantine(bad, "tampered")
        expect(attestor.attest(input({ tier: 1 }))).toMatchObject({ verdict: "exact", fingerprint: good })
        expect(attestor.attest(input({ tier: 2 })).code).toBe("RUNTIME_UNATTESTED")
      })
    ))

  it("is exact on the first stable worker when nothing is pinned, and on a worker serving the pin", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const a = yield* attestor.register({ workerId: "a", tier: 0, manifest: base })
        const b = yield* attestor.register({ workerId: "b", tier: 0, manifest: withVersion("20.19.5") })
        const none = attestor.attest(input())
        expect(none).toMatchObject({ verdict: "exact", fingerprint: a })
        expect(none.code).toBeUndefined()
        expect(attestor.attest(input({ constraint: { fingerprint: b } }))).toMatchObject({
          verdict: "exact",
          fingerprint: b
        })
        expect(attestor.attest(input({ constraint: {} }))).toMatchObject({ verdict: "exact", fingerprint: a })
      })
    ))

  it("serves canary workers only outside prod", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const canary = yield* attestor.register({
          workerId: "c",
          tier: 2,
          manifest: withVersion("20.20.0"),
          channel: "canary"
        })
        expect(attestor.attest(input({ tier: 2, environment: "prod" })).code).toBe("RUNTIME_UNATTESTED")
        expect(attestor.attest(input({ tier: 2, environment: "staging" }))).toMatchObject({
          verdict: "exact",
          fingerprint: canary
        })
        const stable = yield* attestor.register({ workerId: "s", tier: 2, manifest: base })
        // A stable worker is preferred when nothing is pinned; a pin on the canary is honoured outside prod only.
        expect(attestor.attest(input({ tier: 2, environment: "dev" })).fingerprint).toBe(stable)
        expect(
          attestor.attest(input({ tier: 2, environment: "dev", constraint: { fingerprint: canary } })).fingerprint
        ).toBe(canary)
        const prodPinned = attestor.attest(
          input({ tier: 2, environment: "prod", executionClass: "network", constraint: { fingerprint: canary } })
        )
        expect(prodPinned.fingerprint).toBe(stable)
        expect(prodPinned.verdict).toBe("blocked") // minor-level drift back from the canary exceeds the patch budget
      })
    ))

  it("allows patch drift within the window and blocks it after", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const pinned = fingerprint(base)
        yield* attestor.register({ workerId: "old", tier: 2, manifest: base })
        yield* attestor.deregister("old")
        yield* TestClock.adjust(1000)
        const worker = yield* attestor.register({ workerId: "new", tier: 2, manifest: withVersion("20.19.3") })
        const within = attestor.attest(input({ tier: 2, constraint: { fingerprint: pinned }, now: 1000 + 72 * HOUR }))
        expect(within).toMatchObject({ verdict: "drift-allowed", code: "RUNTIME_DRIFT_ALLOWED", fingerprint: worker })
        const after = attestor.attest(input({ tier: 2, constraint: { fingerprint: pinned }, now: 1001 + 72 * HOUR }))
        expect(after).toMatchObject({ verdict: "blocked", code: "RUNTIME_DRIFT_BLOCKED", fingerprint: worker })
        expect(after.detail).toContain("window")
      })
    ))

  it("applies the stricter class budgets and the drift level", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const pinned = yield* attestor.register({ workerId: "w", tier: 1, manifest: base })
        yield* attestor.register({ workerId: "w", tier: 1, manifest: withVersion("20.19.1") })
        expect(yield* attestor.workers(1)).toHaveLength(1)
        const pin = { constraint: { fingerprint: pinned }, tier: 1 as const }
        expect(attestor.attest(input({ ...pin, executionClass: "file" })).verdict).toBe("drift-allowed")
        expect(attestor.attest(input({ ...pin, executionClass: "transform" })).code).toBe("RUNTIME_DRIFT_BLOCKED")
        expect(attestor.attest(input({ ...pin, executionClass: "privileged" })).code).toBe("RUNTIME_DRIFT_BLOCKED")

        yield* attestor.register({ workerId: "w", tier: 1, manifest: withVersion("20.20.0") })
        expect(attestor.attest(input({ ...pin, executionClass: "file" })).verdict).toBe("blocked")
        const minor: DriftPolicy = { default: { allow: "minor", windowMs: HOUR } }
        expect(attestor.attest(input({ ...pin, executionClass: "file", drift: minor })).verdict).toBe("drift-allowed")
        expect(attestor.attest(input({ ...pin, executionClass: "transform", drift: minor })).verdict).toBe(
          "drift-allowed"
        )

        yield* attestor.register({
          workerId: "w",
          tier: 1,
          manifest: { ...withVersion("20.19.1"), sandboxProfile: "other" }
        })
        expect(attestor.attest(input({ ...pin, executionClass: "file", drift: minor })).verdict).toBe("blocked")
        yield* attestor.register({ workerId: "w", tier: 1, manifest: withVersion("22.0.0") })
        expect(attestor.attest(input({ ...pin, executionClass: "file", drift: minor })).verdict).toBe("blocked")
      })
    ))

  it("blocks a pin on an unknown fingerprint", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        const worker = yield* attestor.register({ workerId: "w", tier: 0, manifest: base })
        const a = attestor.attest(
          input({ constraint: { fingerprint: "f".repeat(64) }, drift: { default: { allow: "minor", windowMs: 1e12 } } })
        )
        expect(a).toMatchObject({ verdict: "blocked", code: "RUNTIME_DRIFT_BLOCKED", fingerprint: worker })
        expect(a.detail).toContain("unknown")
      })
    ))

  it("moves a re-registered worker between tiers and deregisters it", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        yield* attestor.register({ workerId: "w", tier: 0, manifest: base })
        yield* attestor.register({ workerId: "w", tier: 3, manifest: base })
        expect(yield* attestor.workers(0)).toEqual([])
        expect((yield* attestor.workers(3)).map((w) => w.workerId)).toEqual(["w"])
        expect(attestor.manifest(fingerprint(base))).toEqual(base)
        expect(yield* attestor.deregister("w")).toBe(true)
        expect(yield* attestor.deregister("w")).toBe(false)
        expect(attestor.attest(input({ tier: 3 })).code).toBe("RUNTIME_UNATTESTED")
        // The manifest is remembered after the worker is gone, so pins on it still resolve.
        expect(attestor.manifest(fingerprint(base))).toEqual(base)
      })
    ))

  it("layerCurrentRuntime registers this process for every tier", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        return [0, 1, 2, 3].map((tier) => attestor.attest(input({ tier: tier as 0 | 1 | 2 | 3 })))
      }).pipe(Effect.provide(Attestor.layerCurrentRuntime()))
    )
    const fp = fingerprint(await Effect.runPromise(currentManifest()))
    expect(result.map((a) => a.verdict)).toEqual(["exact", "exact", "exact", "exact"])
    expect(new Set(result.map((a) => a.fingerprint))).toEqual(new Set([fp]))
  })

  it("layerCurrentRuntime fails the layer on a missing lockfile", async () => {
    const error = await Effect.runPromise(
      Effect.flip(
        Effect.provide(
          Attestor.use(() => Effect.void),
          Attestor.layerCurrentRuntime({ lockfiles: ["/nonexistent.lock"] })
        )
      )
    )
    expect(error).toBeInstanceOf(ManifestError)
  })

  it("attest is cheap", () =>
    run(
      Effect.gen(function* () {
        const attestor = yield* Attestor
        for (let i = 0; i < 8; i++)
          yield* attestor.register({ workerId: `w${i}`, tier: 0, manifest: withVersion(`20.19.${i}`) })
        const pinned = fingerprint(withVersion("20.19.7"))
        const n = 100_000
        const start = performance.now()
        for (let i = 0; i < n; i++) attestor.attest(input({ constraint: { fingerprint: pinned } }))
        const perCall = ((performance.now() - start) * 1000) / n
        expect(perCall).toBeLessThan(5) // µs; typically well under 0.5
      })
    ))
})
