import { readFileSync, writeFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import * as FileLedger from "../src/FileLedger.ts"
import * as Ledger from "../src/Ledger.ts"
import * as Sealer from "../src/Sealer.ts"
import { appendSequentially, ledgerFixture } from "../../../test/support/ledgerFixture.ts"

const { fresh, keys, withLedger, withStorage } = ledgerFixture({
  name: "verify-sig",
  extension: "jsonl",
  open: FileLedger.open
})

const verify = (file: string, publicKeys: ReadonlyArray<string>, options?: Ledger.VerifyStorageOptions) =>
  withStorage(file, (s) => Ledger.verifyStorage(s, publicKeys, options))

/** A ledger of 12 records with checkpoints at 5, 10 and 12. */
const build = async () => {
  const file = fresh()
  await withLedger(file, (ledger) => appendSequentially(ledger, 0, 12), { checkpointEvery: 5 })
  return file
}

describe("Ledger.verifyStorage signatures option", () => {
  it("without keys, fails on the first checkpoint unless signatures are skipped", async () => {
    const file = await build()
    expect(await verify(file, [])).toMatchObject({ ok: false, failure: "checkpoint-signature", firstBadIndex: 0 })
    expect(await verify(file, [], { signatures: "skip" })).toMatchObject({
      ok: true,
      length: 12,
      checkpointsVerified: 3
    })
  })

  it("skipping signatures still checks each checkpoint's size and head hash", async () => {
    const truncated = await build()
    const lines = readFileSync(truncated, "utf8").split("\n")
    writeFileSync(truncated, lines.slice(0, 9).join("\n") + "\n")
    expect(await verify(truncated, [], { signatures: "skip" })).toMatchObject({
      ok: false,
      length: 9,
      firstBadIndex: 9,
      failure: "truncated"
    })

    const rewritten = await build()
    const cps = readFileSync(`${rewritten}.checkpoints`, "utf8").split("\n")
    const first = JSON.parse(cps[0]!) as Ledger.Checkpoint
    cps[0] = JSON.stringify({ ...first, headHash: "f".repeat(64) })
    writeFileSync(`${rewritten}.checkpoints`, cps.join("\n"))
    expect(await verify(rewritten, [], { signatures: "skip" })).toMatchObject({
      ok: false,
      firstBadIndex: 0,
      failure: "checkpoint-mismatch"
    })
  })

  it("with keys, a checkpoint signed by none of them fails whatever the default", async () => {
    const file = await build()
    const other = Sealer.generateKeyPair()
    expect(await verify(file, [other.publicKeyPem])).toMatchObject({ ok: false, failure: "checkpoint-signature" })
    expect(await verify(file, [other.publicKeyPem], { signatures: "verify" })).toMatchObject({ ok: false })
    expect(await verify(file, [other.publicKeyPem, keys.publicKeyPem])).toMatchObject({ ok: true, length: 12 })
  })
})
