/**
 * The single-writer lock of a file ledger: `<ledger>.lock`, created exclusively and holding the owner's pid. A lock
 * whose pid is dead (or that holds no pid after a grace period) is stale and taken over.
 */
import * as fs from "node:fs"

/** A lock without a pid is its owner's for this long (it may be between creating and writing it). */
const LOCK_GRACE_MS = 2000

/** Lock tokens held in this process: a lock naming our own pid but none of these was left by an earlier process. */
const held = new Set<string>()

/** Takes the lock, or returns a description of its live holder. */
export const takeLock = (lockFile: string, token: string): string | undefined => {
  // A few rounds: each after the lock vanished or a stale one was removed.
  for (let round = 0; round < 3; round++) {
    try {
      const fd = fs.openSync(lockFile, "wx", 0o644)
      try {
        fs.writeSync(fd, token)
      } finally {
        fs.closeSync(fd)
      }
      held.add(token)
      return undefined
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    }
    const seen = readLock(lockFile)
    if (seen === undefined) continue
    const pid = Number.parseInt(seen.content, 10)
    if (pid === process.pid) {
      // Containers restart with the same pid, so our pid in the lock proves nothing unless this process holds it.
      if (held.has(seen.content)) return `process ${pid} (this process)`
    } else if (Number.isInteger(pid) && pid > 0) {
      if (isAlive(pid)) return `process ${pid}`
    } else if (seen.ageMs < LOCK_GRACE_MS) {
      return "a process that is still creating the lock"
    }
    // Stale. Re-read right before removing, so a lock another opener has just taken over is not removed instead.
    if (readLock(lockFile)?.content === seen.content) fs.rmSync(lockFile, { force: true })
  }
  return "another process contending for the same stale lock"
}

const readLock = (lockFile: string): { readonly content: string; readonly ageMs: number } | undefined => {
  try {
    return { content: fs.readFileSync(lockFile, "utf8"), ageMs: Date.now() - fs.statSync(lockFile).mtimeMs }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Releases the lock if it still holds our token. */
export const releaseLock = (lockFile: string, token: string) => {
  held.delete(token)
  try {
    if (fs.readFileSync(lockFile, "utf8") === token) fs.unlinkSync(lockFile)
  } catch {
    // Already gone; nothing of ours to release.
  }
}
