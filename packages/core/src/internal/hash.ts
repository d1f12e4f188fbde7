import { createHash } from "node:crypto"

/** SHA-256 of a UTF-8 string or bytes, lowercase hex. */
export const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")
