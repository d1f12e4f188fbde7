import * as crypto from "node:crypto"

// One-shot crypto.hash (Node ≥ 20.12) skips the Hash object that createHash allocates per call.
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: "hex") => string }).hash

/** SHA-256 of a UTF-8 string or bytes, lowercase hex. */
export const sha256Hex: (data: string | Uint8Array) => string =
  oneShot !== undefined
    ? (data) => oneShot("sha256", data, "hex")
    : (data) => crypto.createHash("sha256").update(data).digest("hex")
