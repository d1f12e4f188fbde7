/**
 * Seals decisions and signs what must verify offline (SPEC §5).
 *
 * Sealing is content addressing: the snapshot id of an envelope is the SHA-256 of its canonical form (see
 * {@link Envelope}); no signature is paid per request. Signatures (Ed25519, `node:crypto`) cover policy snapshots,
 * once per policy version, and ledger checkpoints, every N records or T milliseconds, so every decision is under a
 * signature through the hash chain. Everything signed verifies with only the public key: {@link verifySignature}.
 *
 * Keys come from configuration: a PEM private key for production ({@link Sealer.layer}), or a fresh key pair for
 * development ({@link Sealer.layerGenerated}).
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto"
import { Context, Effect, Layer, Schema } from "effect"
import * as Envelope from "./Envelope.ts"
import { sha256Hex } from "./internal/hash.ts"

/** The sealer could not seal or sign (bad key, uncanonicalizable envelope, crypto failure). */
export class SealerUnavailable extends Schema.TaggedError<SealerUnavailable>()("SealerUnavailable", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** Key material from configuration. */
export interface SealerKeys {
  /** PKCS#8 PEM Ed25519 private key. When absent a key pair is generated (development only). */
  readonly privateKeyPem?: string | undefined
}

/** A sealed envelope with the exact bytes its snapshot id hashes. */
export interface Sealed {
  /** The sealed envelope (with `decision.snapshotId`), frozen at the top level. */
  readonly envelope: Envelope.ExecutionEnvelope
  /** Canonical text of the envelope without snapshot id: what the ledger stores. */
  readonly canonical: string
  /** SHA-256 of `canonical`. */
  readonly snapshotId: string
}

/** Key id of a public key: the first 16 hex digits of the SHA-256 of its SPKI DER encoding. */
export const keyIdOf = (publicKey: KeyObject | string): string => {
  const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey
  return sha256Hex(key.export({ type: "spki", format: "der" })).slice(0, 16)
}

/**
 * Verifies a base64 Ed25519 signature over `message` with only the public key (PEM). Never throws: a malformed key or
 * signature is simply `false`.
 */
export const verifySignature = (publicKeyPem: string | KeyObject, message: string, signatureB64: string): boolean => {
  try {
    const key = typeof publicKeyPem === "string" ? createPublicKey(publicKeyPem) : publicKeyPem
    return verify(null, Buffer.from(message, "utf8"), key, Buffer.from(signatureB64, "base64"))
  } catch {
    return false
  }
}

/** Generates an Ed25519 key pair as PEM strings (e.g. for `egl keys generate` or tests). */
export const generateKeyPair = (): { readonly privateKeyPem: string; readonly publicKeyPem: string } => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519")
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString()
  }
}

/** The sealing service. */
export class Sealer extends Context.Service<
  Sealer,
  {
    /** Id of the signing key (see {@link keyIdOf}). */
    readonly keyId: string
    /** SPKI PEM public key that verifies every signature this sealer makes. */
    readonly publicKeyPem: string
    /** Content-addresses an envelope: adds `decision.snapshotId` and freezes it. */
    seal(envelope: Envelope.UnsealedEnvelope): Effect.Effect<Sealed, SealerUnavailable>
    /** Ed25519 signature (base64) over a UTF-8 message. */
    sign(message: string): Effect.Effect<string, SealerUnavailable>
  }
>()("@egl/core/Sealer") {
  /** A sealer for the given keys; a generated key pair when no private key is configured. */
  static readonly layer = (keys: SealerKeys) => Layer.effect(Sealer, make(keys))
  /** A sealer with a freshly generated key pair (development and tests). */
  static readonly layerGenerated = Layer.effect(
    Sealer,
    Effect.suspend(() => make({}))
  )
}

const make = (keys: SealerKeys): Effect.Effect<Sealer["Service"], SealerUnavailable> =>
  Effect.try({
    try: () => {
      const privateKey =
        keys.privateKeyPem === undefined
          ? generateKeyPairSync("ed25519").privateKey
          : createPrivateKey(keys.privateKeyPem)
      if (privateKey.asymmetricKeyType !== "ed25519")
        throw new Error(`expected an ed25519 key, got ${privateKey.asymmetricKeyType}`)
      return privateKey
    },
    catch: (cause) =>
      new SealerUnavailable({ detail: `invalid signing key: ${String((cause as Error)?.message ?? cause)}` })
  }).pipe(
    Effect.map((privateKey) => {
      const publicKey = createPublicKey(privateKey)
      const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString()
      return Sealer.of({
        keyId: keyIdOf(publicKey),
        publicKeyPem,
        seal: (unsealed) =>
          Effect.suspend(() => {
            const form = Envelope.sealedForm(unsealed)
            if (!("snapshotId" in form)) {
              return Effect.fail(new SealerUnavailable({ detail: form.message }))
            }
            // The sealed bytes are `canonical` (what the ledger keeps); the object is frozen at the top and any change
            // to it is detected by Envelope.verifySeal. Deep-freezing every admission would double the sealing cost.
            const envelope = Object.freeze(Envelope.withSnapshotId(unsealed, form.snapshotId))
            return Effect.succeed({ envelope, canonical: form.canonical, snapshotId: form.snapshotId })
          }),
        sign: (message) =>
          Effect.try({
            try: () => sign(null, Buffer.from(message, "utf8"), privateKey).toString("base64"),
            catch: (cause) => new SealerUnavailable({ detail: `signing failed: ${String(cause)}` })
          })
      })
    })
  )
