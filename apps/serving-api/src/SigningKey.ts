/**
 * The signing key of the app's ledger checkpoints and policy snapshot. It must live as long as the ledger, or earlier
 * checkpoints stop verifying: the app generates one on first start, keeps it in the data folder (`signing-key.pem`,
 * mode 0600) and writes its public key beside it (`signing-key.pub.pem`) for auditors and `egl ledger verify
 * --public-key`. `EGL_SIGNING_KEY_FILE` points at a key kept elsewhere (a secret store mount); production should.
 * @module
 */
import { Sealer } from "@egl/core"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createPublicKey } from "node:crypto"
import { dirname, join } from "node:path"

/** The private key PEM to sign with, created on first use; its public key is written beside it. */
export const loadOrCreate = (dataDir: string, env: NodeJS.ProcessEnv = process.env): string => {
  const file = env["EGL_SIGNING_KEY_FILE"] ?? join(dataDir, "signing-key.pem")
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, Sealer.generateKeyPair().privateKeyPem, { mode: 0o600, flag: "wx" })
  }
  const privateKeyPem = readFileSync(file, "utf8")
  const publicFile = file.replace(/\.pem$/, "") + ".pub.pem"
  const publicKeyPem = createPublicKey(privateKeyPem).export({ type: "spki", format: "pem" }).toString()
  if (!existsSync(publicFile) || readFileSync(publicFile, "utf8") !== publicKeyPem)
    writeFileSync(publicFile, publicKeyPem)
  return privateKeyPem
}
