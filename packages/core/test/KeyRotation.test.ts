import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Canonical, FileLedger, Ledger, Sealer } from "@egl/core"

const dirs: Array<string> = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const session = <A>(
  file: string,
  privateKeyPem: string,
  program: Effect.Effect<A, unknown, Ledger.Ledger>,
  trustedPublicKeys?: ReadonlyArray<string>
) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.provide(
        program,
        FileLedger.layer(file, { checkpointEvery: 2, checkpointIntervalMs: 0, trustedPublicKeys }).pipe(
          Layer.provide(Sealer.Sealer.layer({ privateKeyPem }))
        )
      )
    )
  )

describe("signing key rotation", () => {
  it("checkpoints of an earlier key verify only while that key is trusted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "egl-rotation-"))
    dirs.push(dir)
    const file = join(dir, "ledger.jsonl")
    const oldKey = Sealer.generateKeyPair()
    const newKey = Sealer.generateKeyPair()
    await session(
      file,
      oldKey.privateKeyPem,
      Ledger.Ledger.use((l) =>
        Effect.forEach([1, 2, 3, 4, 5], (i) =>
          l.append(Ledger.draft("incident", new Date().toISOString(), `r${i}`, Canonical.toCanonicalJsonSync({ i })))
        )
      )
    )
    const untrusted = await session(
      file,
      newKey.privateKeyPem,
      Ledger.Ledger.use((l) => l.verify())
    )
    expect(untrusted).toMatchObject({ ok: false, failure: "checkpoint-signature" })
    const rotated = await session(
      file,
      newKey.privateKeyPem,
      Ledger.Ledger.use((l) => l.verify()),
      [oldKey.publicKeyPem]
    )
    expect(rotated).toMatchObject({ ok: true, length: 5 })
    expect(rotated.checkpointsVerified).toBeGreaterThanOrEqual(2)
  })
})
